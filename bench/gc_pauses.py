"""Python's full garbage collections in a loaded service, before and after gc.freeze().

A loaded runtime holds about half a million objects the cyclic collector tracks (the model's
tokenizer, the embedder, pydantic and FastAPI's models, milvus-lite's Python server when the
index is milvus-lite). A full (generation 2) collection walks all of them. The service freezes
what it loaded once it is started (service/api/app.py); this measures what that buys: the same
searches on the same loaded runtime (the starter corpus and the 5k MS MARCO passages), first
unfrozen (the baseline), then frozen, counting each full collection and its length through
gc.callbacks, and timing the searches. Writes bench/results/gc_pauses.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.machine import machine_report
from bench.msmarco import as_documents, load


class FullCollections:
    """Lengths (ms) of the generation-2 collections seen while installed."""

    def __init__(self) -> None:
        self.lengths_ms: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.lengths_ms.append(1000 * (time.perf_counter() - self._started))


def run(index, queries: list[str]) -> dict:  # type: ignore[no-untyped-def]
    watch = FullCollections()
    gc.callbacks.append(watch)
    times = []
    try:
        for query in queries:
            start = time.perf_counter()
            index.search(query, 5)
            times.append(1000 * (time.perf_counter() - start))
    finally:
        gc.callbacks.remove(watch)
    return {
        "searches": len(times),
        "search_ms": {"p50": float(np.median(times)), "p99": float(np.percentile(times, 99)), "max": max(times)},
        "full_collections": len(watch.lengths_ms),
        "full_collection_ms": watch.lengths_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--searches", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gc_pauses.json")
    args = parser.parse_args()
    corpus, queries, _ = load()
    documents = as_documents(corpus)
    texts = list(queries.values())
    texts = (texts * (args.searches // len(texts) + 1))[: args.searches]
    report: dict = {"benchmark": "gc_pauses", "machine": machine_report(), "threads": os.cpu_count(), "indexes": {}}
    from service.runtime.runtime import Runtime
    from service.settings import Settings

    for kind in ("faiss", "milvus"):
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["RAGPAUSE_INDEX"] = kind
            runtime = Runtime.load(Settings(data_dir=Path(tmp)))
            try:
                runtime.index.add_documents(documents)  # the MS MARCO passages, as a user's documents
                runtime.index.save()
                tracked = len(gc.get_objects())
                run(runtime.index, texts[:100])  # warm up
                unfrozen = run(runtime.index, texts)
                gc.collect()
                gc.freeze()
                frozen = run(runtime.index, texts)
                gc.unfreeze()
            finally:
                runtime.index.close()
        ratio = frozen["search_ms"]["p99"] / unfrozen["search_ms"]["p99"]
        row = {"tracked_objects": tracked, "unfrozen": unfrozen, "frozen": frozen, "p99_ratio": ratio}
        report["indexes"][kind] = row
        print(
            f"{kind}: {tracked} tracked objects; unfrozen {unfrozen['full_collections']} full collections "
            f"(max {max(unfrozen['full_collection_ms'], default=0):.0f} ms), search p50/p99 "
            f"{unfrozen['search_ms']['p50']:.1f}/{unfrozen['search_ms']['p99']:.1f} ms; frozen "
            f"{frozen['full_collections']} (max {max(frozen['full_collection_ms'], default=0):.0f} ms), "
            f"p50/p99 {frozen['search_ms']['p50']:.1f}/{frozen['search_ms']['p99']:.1f} ms (p99 x{ratio:.2f})"
        )
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
