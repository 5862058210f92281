"""Changing the embedder: how long the background re-embedding takes per 1,000 chunks, at its
own low-priority pace (the service's defaults) and flat out, and what it costs searches that
run meanwhile. Writes bench/results/reembedding.json.

An index of MS MARCO passages is built with one embedder and opened with the other, both
ways between int8 and float32 ONNX.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine_report
from bench.msmarco import as_documents, load
from retrieval.document_index import DocumentIndex, DocumentInput
from retrieval.embedder import Embedder

CACHE = Path(__file__).resolve().parent.parent / "index_data" / "embedders"


def search_ms(index: DocumentIndex, queries: list[str]) -> float:
    """Median milliseconds of a hybrid search."""
    times = []
    for query in queries:
        start = time.perf_counter()
        index.search(query, k=4)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def migrate(old: Embedder, new: Embedder, docs: list[DocumentInput], queries: list[str], **pace: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        built = DocumentIndex(Path(tmp), old)
        built.add_documents(docs)
        built.close()
        index = DocumentIndex(Path(tmp), new, reembed_in_background=False, **pace)  # type: ignore[arg-type]
        chunks = index.stats()["chunks"]
        index.search("warm up")  # the first search builds BM25
        idle = search_ms(index, queries)
        job = index.reembedding
        start = time.perf_counter()
        job.start()
        while index.store.reembedding_progress()[0] == 0:  # its model loads first
            time.sleep(0.01)
        during = search_ms(index, queries)
        assert job.wait()
        seconds = time.perf_counter() - start
        index.store.close()
    return {
        "chunks": chunks,
        "seconds": seconds,
        "seconds_per_1000_chunks": 1000 * seconds / chunks,
        "search_ms_median_idle": idle,
        "search_ms_median_during": during,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "reembedding.json")
    args = parser.parse_args()
    corpus, queries, _ = load()
    docs = as_documents(corpus[: args.docs])
    embedders = {b: Embedder(backend=b, cache_root=CACHE) for b in ("onnx-int8", "onnx")}
    paces = {
        "background (batch 16, 0.05 s pause)": {},
        "flat out (batch 64, no pause)": {"reembed_batch": 64, "reembed_pause_s": 0.0},
    }
    report: dict = {"benchmark": "reembedding", "documents": len(docs), "machine": machine_report(), "runs": {}}
    for old, new in (("onnx", "onnx-int8"), ("onnx-int8", "onnx")):
        for name, pace in paces.items():
            run = migrate(embedders[old], embedders[new], docs, list(queries.values())[:40], **pace)
            report["runs"][f"{old} -> {new}, {name}"] = run
            print(
                f"{old} -> {new}, {name}: {run['seconds_per_1000_chunks']:.1f} s per 1,000 chunks; "
                f"search {run['search_ms_median_idle']:.1f} ms idle, {run['search_ms_median_during']:.1f} ms during"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
