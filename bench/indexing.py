"""Indexing speed: our whole ingestion (chunk, embed, SQLite, FAISS) with each embedder engine
vs plain sentence-transformers `encode` of the same chunks, in one run, with the cosine
agreement of the vectors. Writes bench/results/indexing.json.

The engines' order depends on the CPU (ONNX Runtime's int8 kernels need VNNI to be fast), so
the report names the CPU; `bench/cpu_view/as-avx2 ... --out bench/results/indexing-avx2.json`
measures the AVX2 paths on an AVX-512 machine.
"""

from __future__ import annotations

import argparse
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
from retrieval.chunking import chunk_text
from retrieval.document_index import DocumentIndex, DocumentInput
from retrieval.embedder import Embedder, default_embedder_path

CACHE = Path(__file__).resolve().parent.parent / "index_data" / "embedders"


def ingest(engine: str, docs: list[DocumentInput]) -> tuple[float, dict[str, np.ndarray]]:
    """Seconds for the full ingestion, and the stored vector of each chunk text."""
    embedder = Embedder(backend=engine, cache_root=CACHE)
    embedder.encode(["warm up"])
    with tempfile.TemporaryDirectory() as tmp:
        index = DocumentIndex(Path(tmp), embedder)
        start = time.perf_counter()
        index.add_documents(docs)
        index.save()
        seconds = time.perf_counter() - start
        vectors = {}
        for ids, batch in index.store.iter_vectors():
            records = index.store.chunks_by_id(ids.tolist())
            for chunk_id, vector in zip(ids.tolist(), batch):
                vectors[records[chunk_id].text] = vector
        index.store.close()
    return seconds, vectors


def ingest_stores(docs: list[DocumentInput]) -> dict[str, dict[str, float]]:
    """The default embedder's whole ingestion into each store, side by side: the embedded one
    (SQLite + FAISS + BM25) and milvus-lite; the embedding, the same for both, dominates."""
    from retrieval.milvus_index import MilvusIndex

    embedder = Embedder(cache_root=CACHE)
    embedder.encode(["warm up"])
    out = {}
    for name in ("faiss_sqlite", "milvus_lite"):
        with tempfile.TemporaryDirectory() as tmp:
            if name == "faiss_sqlite":
                index = DocumentIndex(Path(tmp), embedder)
            else:
                index = MilvusIndex(str(Path(tmp) / "milvus.db"), embedder)
            start = time.perf_counter()
            results = index.add_documents(docs)
            index.save()
            seconds = time.perf_counter() - start
            chunks = sum(r.n_chunks for r in results)
            index.close()
        out[name] = {"seconds": seconds, "chunks": chunks, "chunks_per_s": chunks / seconds}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "indexing.json")
    args = parser.parse_args()
    corpus, _, _ = load()
    docs = as_documents(corpus[: args.docs])
    chunks = [c.text for d in docs for c in chunk_text(d.text.strip())]

    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(default_embedder_path(), device="cpu")
    model.encode(["warm up"])
    start = time.perf_counter()
    reference = model.encode(chunks, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    baseline_s = time.perf_counter() - start
    by_text = dict(zip(chunks, reference))

    report = {
        "benchmark": "indexing",
        "documents": len(docs),
        "chunks": len(chunks),
        "threads": os.cpu_count(),
        "machine": machine_report(),
        "baseline_sentence_transformers_encode": {"seconds": baseline_s, "chunks_per_s": len(chunks) / baseline_s},
        "ours": {},
        "targets": {"speedup": 2.0, "cosine_agreement": 0.99},
    }
    for engine in ("onnx-int8", "onnx", "torch"):
        seconds, vectors = ingest(engine, docs)
        cos = np.array([float(np.dot(vectors[t], by_text[t])) for t in vectors if t in by_text])
        report["ours"][engine] = {
            "seconds": seconds,
            "chunks_per_s": len(vectors) / seconds,
            "speedup": (len(vectors) / seconds) / (len(chunks) / baseline_s),
            "cosine_agreement_mean": float(cos.mean()),
            "cosine_agreement_min": float(cos.min()),
        }
    report["stores"] = ingest_stores(docs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    base = report["baseline_sentence_transformers_encode"]["chunks_per_s"]
    print(f"baseline sentence-transformers encode: {base:.1f} chunks/s ({len(chunks)} chunks)")
    for engine, r in report["ours"].items():
        print(
            f"ours, full ingestion ({engine}): {r['chunks_per_s']:.1f} chunks/s, speedup {r['speedup']:.2f}x, "
            f"cosine agreement mean {r['cosine_agreement_mean']:.4f} (min {r['cosine_agreement_min']:.4f})"
        )
    stores = report["stores"]
    ratio = stores["milvus_lite"]["chunks_per_s"] / stores["faiss_sqlite"]["chunks_per_s"]
    print(
        f"stores, default embedder: SQLite+FAISS {stores['faiss_sqlite']['chunks_per_s']:.1f} chunks/s, "
        f"milvus-lite {stores['milvus_lite']['chunks_per_s']:.1f} chunks/s ({ratio:.2f}x)"
    )


if __name__ == "__main__":
    main()
