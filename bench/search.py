"""Search latency and approximate recall: exact (Flat) vs HNSW at 10k and 100k chunks.

Vectors are real all-MiniLM-L6-v2 embeddings of the MS MARCO passages, grown to the target
size by small random perturbations (clustered like real text, unlike uniform noise); queries
are the embedded MS MARCO queries, perturbed likewise. Recall@10 of HNSW is measured against
the exact results. Also times one end-to-end hybrid search on the 5k-passage index.
Writes bench/results/search.json.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.machine import machine_report
from bench.msmarco import load
from retrieval.document_index import DocumentIndex, DocumentInput
from retrieval.embedder import Embedder
from retrieval.faiss_index import VectorIndex

CACHE = Path(__file__).resolve().parent.parent / "index_data" / "embedders"


def grow(base: np.ndarray, n: int, rng: np.random.Generator, noise: float = 0.8) -> np.ndarray:
    picks = base[rng.integers(0, len(base), n)]
    out = picks + rng.normal(0, noise / np.sqrt(base.shape[1]), picks.shape).astype(np.float32)
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def latencies(index: VectorIndex, queries: np.ndarray, k: int = 10) -> tuple[list[float], np.ndarray]:
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        _, ids = index.search(q[None], k)
        times.append(time.perf_counter() - start)
        found.append(ids[0])
    return times, np.array(found)


def main() -> None:
    rng = np.random.default_rng(0)
    corpus, queries, _ = load()
    embedder = Embedder(cache_root=CACHE)
    report: dict = {"benchmark": "search", "machine": machine_report(), "threads": os.cpu_count(), "sizes": {}}

    with tempfile.TemporaryDirectory() as tmp:
        index = DocumentIndex(Path(tmp), embedder)
        index.add_documents([DocumentInput(d["text"], "", f"m:{d['_id']}", d["_id"]) for d in corpus])
        base = index.vectors.reconstruct(list(range(1, index.stats()["chunks"] + 1)))
        texts = list(queries.values())
        index.search(texts[0])  # builds the lexical index once
        end_to_end = []
        for text in texts:
            start = time.perf_counter()
            index.search(text, k=5)
            end_to_end.append(time.perf_counter() - start)
        report["hybrid_search_5k_ms"] = {
            "p50": 1000 * float(np.median(end_to_end)),
            "p99": 1000 * float(np.percentile(end_to_end, 99)),
        }
        query_vectors = embedder.encode(texts)

    probe = np.concatenate([query_vectors, grow(query_vectors, 150, rng, 0.2)])
    for size in (10_000, 100_000):
        vectors = grow(base, size, rng)
        ids = np.arange(size, dtype=np.int64)
        exact = VectorIndex(vectors.shape[1], hnsw_threshold=10**9)
        exact.add(ids, vectors)
        start = time.perf_counter()
        approx = VectorIndex(vectors.shape[1], hnsw_threshold=1)
        approx.add(ids, vectors)
        build_s = time.perf_counter() - start
        exact_t, exact_ids = latencies(exact, probe)
        approx_t, approx_ids = latencies(approx, probe)
        recall = float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx_ids, exact_ids)]))
        row = {
            "exact_ms": {"p50": 1000 * float(np.median(exact_t)), "p99": 1000 * float(np.percentile(exact_t, 99))},
            "hnsw_ms": {"p50": 1000 * float(np.median(approx_t)), "p99": 1000 * float(np.percentile(approx_t, 99))},
            "hnsw_build_s": build_s,
            "hnsw_recall@10_vs_exact": recall,
            "speedup_p50": float(np.median(exact_t) / np.median(approx_t)),
        }
        report["sizes"][str(size)] = row
        print(
            f"{size:>7} chunks: exact p50 {row['exact_ms']['p50']:.2f} ms p99 {row['exact_ms']['p99']:.2f} ms | "
            f"HNSW p50 {row['hnsw_ms']['p50']:.3f} ms p99 {row['hnsw_ms']['p99']:.3f} ms "
            f"(x{row['speedup_p50']:.1f}, built in {build_s:.1f} s) | recall@10 {recall:.3f} (target >= 0.95)"
        )
    print(
        f"hybrid search end to end, 5k passages: p50 {report['hybrid_search_5k_ms']['p50']:.1f} ms, "
        f"p99 {report['hybrid_search_5k_ms']['p99']:.1f} ms"
    )
    out = Path(__file__).parent / "results" / "search.json"
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
