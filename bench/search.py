"""Search latency and approximate recall: exact (Flat) vs HNSW at 10k and 100k chunks, and
the same vectors in milvus-lite, side by side in one run.

Vectors are real all-MiniLM-L6-v2 embeddings of the MS MARCO passages, grown to the target
size by small random perturbations (clustered like real text, unlike uniform noise); queries
are the embedded MS MARCO queries, perturbed likewise. Recall@10 of HNSW and of Milvus is
measured against FAISS's exact results. Also times one end-to-end hybrid search on the
5k-passage index, on the embedded store (SQLite + FAISS + BM25) and on MilvusIndex.
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
from bench.msmarco import as_documents, load
from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from retrieval.faiss_index import VectorIndex
from retrieval.milvus_index import MilvusIndex

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


def milvus_latencies(
    path: Path, vectors: np.ndarray, queries: np.ndarray, k: int = 10
) -> tuple[list[float], np.ndarray, float]:
    """Dense search on milvus-lite (its FLAT index: exact) over the same vectors, once flushed;
    and the seconds it took to insert, seal and load them."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(path))
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
    params = client.prepare_index_params()
    params.add_index("vector", index_type="FLAT", metric_type="IP")
    start = time.perf_counter()
    client.create_collection("bench", schema=schema, index_params=params)
    for at in range(0, len(vectors), 5000):
        rows = [{"id": at + i, "vector": v.tolist()} for i, v in enumerate(vectors[at : at + 5000])]
        client.insert("bench", rows)
    client.flush("bench")  # sealed and indexed, as MilvusIndex.save() leaves its chunks after an upload
    client.load_collection("bench")
    client.search("bench", data=[queries[0].tolist()], limit=k)  # the first search finishes loading
    load_s = time.perf_counter() - start
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        hits = client.search("bench", data=[q.tolist()], limit=k)
        times.append(time.perf_counter() - start)
        found.append([h["id"] for h in hits[0]])
    client.close()
    return times, np.array(found), load_s


def ms(times: list[float]) -> dict[str, float]:
    return {"p50": 1000 * float(np.median(times)), "p99": 1000 * float(np.percentile(times, 99))}


def hybrid_latencies(index, texts: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
    index.search(texts[0])  # builds the lexical index once (FAISS side), loads collections (Milvus)
    out = []
    for text in texts:
        start = time.perf_counter()
        index.search(text, k=5)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    rng = np.random.default_rng(0)
    corpus, queries, _ = load()
    embedder = Embedder(cache_root=CACHE)
    report: dict = {"benchmark": "search", "machine": machine_report(), "threads": os.cpu_count(), "sizes": {}}

    documents = as_documents(corpus)
    texts = list(queries.values())
    with tempfile.TemporaryDirectory() as tmp:
        index = DocumentIndex(Path(tmp), embedder)
        index.add_documents(documents)
        base = index.vectors.reconstruct(list(range(1, index.stats()["chunks"] + 1)))
        report["hybrid_search_5k_ms"] = ms(hybrid_latencies(index, texts))
        milvus = MilvusIndex(str(Path(tmp) / "milvus.db"), embedder)
        milvus.add_documents(documents)
        milvus.save()
        report["milvus_lite_hybrid_search_5k_ms"] = ms(hybrid_latencies(milvus, texts))
        milvus.close()
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
        with tempfile.TemporaryDirectory() as tmp:
            milvus_t, milvus_ids, milvus_load_s = milvus_latencies(Path(tmp) / "bench.db", vectors, probe)
        milvus_recall = float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(milvus_ids, exact_ids)]))
        row = {
            "exact_ms": {"p50": 1000 * float(np.median(exact_t)), "p99": 1000 * float(np.percentile(exact_t, 99))},
            "hnsw_ms": {"p50": 1000 * float(np.median(approx_t)), "p99": 1000 * float(np.percentile(approx_t, 99))},
            "hnsw_build_s": build_s,
            "hnsw_recall@10_vs_exact": recall,
            "speedup_p50": float(np.median(exact_t) / np.median(approx_t)),
            "milvus_lite_flat_ms": ms(milvus_t),
            "milvus_lite_insert_and_load_s": milvus_load_s,
            "milvus_lite_recall@10_vs_exact": milvus_recall,
            "milvus_lite_vs_faiss_exact_p50": float(np.median(milvus_t) / np.median(exact_t)),
        }
        report["sizes"][str(size)] = row
        print(
            f"{size:>7} chunks: exact p50 {row['exact_ms']['p50']:.2f} ms p99 {row['exact_ms']['p99']:.2f} ms | "
            f"HNSW p50 {row['hnsw_ms']['p50']:.3f} ms p99 {row['hnsw_ms']['p99']:.3f} ms "
            f"(x{row['speedup_p50']:.1f}, built in {build_s:.1f} s) | recall@10 {recall:.3f} (target >= 0.95)"
        )
        print(
            f"{'':>7}         milvus-lite FLAT p50 {row['milvus_lite_flat_ms']['p50']:.2f} ms "
            f"p99 {row['milvus_lite_flat_ms']['p99']:.2f} ms "
            f"({row['milvus_lite_vs_faiss_exact_p50']:.1f}x FAISS exact), "
            f"recall@10 {milvus_recall:.3f}, inserted and loaded in {milvus_load_s:.1f} s"
        )
    print(
        f"hybrid search end to end, 5k passages: p50 {report['hybrid_search_5k_ms']['p50']:.1f} ms, "
        f"p99 {report['hybrid_search_5k_ms']['p99']:.1f} ms; milvus-lite p50 "
        f"{report['milvus_lite_hybrid_search_5k_ms']['p50']:.1f} ms, "
        f"p99 {report['milvus_lite_hybrid_search_5k_ms']['p99']:.1f} ms"
    )
    out = Path(__file__).parent / "results" / "search.json"
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
