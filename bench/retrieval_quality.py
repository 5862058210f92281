"""Retrieval quality on the MS MARCO subset: BM25 alone, dense alone, and our hybrid, one run.

Indexes the 5,000 passages with our ingestion (chunks, SQLite, FAISS) in a temporary data
directory, runs the 50 judged queries through each mode and reports nDCG@10 and recall@10.
Writes bench/results/retrieval_quality.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.msmarco import load, ndcg_at, recall_at  # noqa: E402
from retrieval.document_index import DocumentIndex, DocumentInput  # noqa: E402
from retrieval.embedder import Embedder  # noqa: E402

MODES = {"bm25": "lexical", "dense": "dense", "ours_hybrid": "hybrid"}


def main() -> None:
    corpus, queries, qrels = load()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(__file__).resolve().parent.parent / "index_data" / "embedders"
        index = DocumentIndex(Path(tmp), Embedder(cache_root=cache))
        start = time.perf_counter()
        results = index.add_documents(
            [DocumentInput(d["text"], d.get("title", ""), f"msmarco:{d['_id']}", d["_id"]) for d in corpus]
        )
        index_seconds = time.perf_counter() - start
        # A passage that repeats another's text is stored once; judge it under the kept id.
        alias = {d["_id"]: r.doc_id for d, r in zip(corpus, results)}
        results: dict[str, dict[str, float]] = {}
        for name, mode in MODES.items():
            ndcgs, recalls = [], []
            for qid, text in queries.items():
                ranked: list[str] = []
                for passage in index.search(text, k=30, mode=mode):
                    if passage.doc_id not in ranked:
                        ranked.append(passage.doc_id)
                judged = {alias.get(d, d): g for d, g in qrels[qid].items()}
                ndcgs.append(ndcg_at(ranked, judged))
                recalls.append(recall_at(ranked, judged))
            results[name] = {"ndcg@10": statistics.mean(ndcgs), "recall@10": statistics.mean(recalls)}
        stats = index.stats()
    best = max(results["bm25"]["ndcg@10"], results["dense"]["ndcg@10"])
    report = {
        "benchmark": "retrieval_quality",
        "dataset": "msmarco subset (5,000 passages, %d judged queries)" % len(queries),
        "index_seconds": index_seconds,
        "chunks": stats["chunks"],
        "results": results,
        "gain_over_best_baseline_ndcg@10": results["ours_hybrid"]["ndcg@10"] - best,
        "ratio_over_best_baseline_ndcg@10": results["ours_hybrid"]["ndcg@10"] / best,
        "target_gain": 0.03,
    }
    out = Path(__file__).parent / "results" / "retrieval_quality.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, r in results.items():
        print(f"{name:12s} nDCG@10 {r['ndcg@10']:.4f}  recall@10 {r['recall@10']:.4f}")
    print(f"ours - best baseline: {report['gain_over_best_baseline_ndcg@10']:+.4f} nDCG@10 (target +0.03); ratio {report['ratio_over_best_baseline_ndcg@10']:.3f}")


if __name__ == "__main__":
    main()
