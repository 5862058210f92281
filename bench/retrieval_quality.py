"""Retrieval quality: BM25 alone, dense alone, and ours (hybrid fusion), one run, two benchmarks.

1. MS MARCO subset: indexes the 5,000 passages with our ingestion (chunks, SQLite, FAISS) in a
   temporary data directory, runs the judged queries through each mode and reports nDCG@10,
   recall@10 and the mean search time, with a bootstrap interval for ours minus the best baseline.
2. SQuAD v1.1 dev paragraph retrieval: the 126 paragraphs are then added to the same index (the
   MS MARCO passages are distractors); each question has exactly one relevant paragraph, so
   recall@3 and MRR@10 are clean. The fusion weight was chosen on the tune articles; the
   held-out article is reported apart.
Writes bench/results/retrieval_quality.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine_report
from bench.msmarco import as_documents, load, ndcg_at, recall_at
from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from scripts.evaluation import SQUAD, SQUAD_SPLITS, read_jsonl, squad_documents

MODES = {"bm25": "lexical", "dense": "dense", "ours": "hybrid"}


def bootstrap_interval(differences: list[float], rounds: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean per-query difference, resampling queries."""
    values = np.asarray(differences)
    picks = np.random.default_rng(seed).integers(0, len(values), (rounds, len(values)))
    means = values[picks].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    corpus, queries, qrels = load()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(__file__).resolve().parent.parent / "index_data" / "embedders"
        index = DocumentIndex(Path(tmp), Embedder(cache_root=cache))
        start = time.perf_counter()
        results = index.add_documents(as_documents(corpus))
        index_seconds = time.perf_counter() - start
        # A passage that repeats another's text is stored once; judge it under the kept id.
        alias = {d["_id"]: r.doc_id for d, r in zip(corpus, results)}
        results: dict[str, dict[str, float]] = {}
        per_query: dict[str, list[float]] = {}
        for name, mode in MODES.items():
            ndcgs, recalls, seconds = [], [], []
            for qid, text in queries.items():
                ranked: list[str] = []
                start = time.perf_counter()
                found = index.search(text, k=30, mode=mode)
                seconds.append(time.perf_counter() - start)
                for passage in found:
                    if passage.doc_id not in ranked:
                        ranked.append(passage.doc_id)
                judged = {alias.get(d, d): g for d, g in qrels[qid].items()}
                ndcgs.append(ndcg_at(ranked, judged))
                recalls.append(recall_at(ranked, judged))
            per_query[name] = ndcgs
            results[name] = {
                "ndcg@10": statistics.mean(ndcgs),
                "recall@10": statistics.mean(recalls),
                "mean_search_ms": 1000 * statistics.mean(seconds),
            }
        stats = index.stats()
        index.add_documents(squad_documents())
        squad = squad_paragraph_retrieval(index)
    best_name = max(("bm25", "dense"), key=lambda n: results[n]["ndcg@10"])
    best = results[best_name]["ndcg@10"]
    gain = results["ours"]["ndcg@10"] - best
    low, high = bootstrap_interval([o - b for o, b in zip(per_query["ours"], per_query[best_name])])
    report = {
        "benchmark": "retrieval_quality",
        "machine": machine_report(),
        "dataset": f"msmarco subset (5,000 passages, {len(queries)} judged queries)",
        "index_seconds": index_seconds,
        "chunks": stats["chunks"],
        "results": results,
        "best_baseline": best_name,
        "gain_over_best_baseline_ndcg@10": gain,
        "gain_95pct_interval": [low, high],
        "ratio_over_best_baseline_ndcg@10": results["ours"]["ndcg@10"] / best,
        "target_gain": 0.03,
        "squad_paragraphs": squad,
    }
    out = Path(__file__).parent / "results" / "retrieval_quality.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, r in results.items():
        print(
            f"{name:8s} nDCG@10 {r['ndcg@10']:.4f}  recall@10 {r['recall@10']:.4f}  search {r['mean_search_ms']:.1f} ms"
        )
    print(
        f"ours - {best_name}: {gain:+.4f} nDCG@10, 95% interval [{low:+.4f}, {high:+.4f}] (target +0.03); "
        f"ratio {report['ratio_over_best_baseline_ndcg@10']:.3f}"
    )

    for split, rows in squad.items():
        line = "  ".join(
            f"{name} R@3 {r['recall@3']:.3f} MRR@10 {r['mrr@10']:.3f}" for name, r in rows["modes"].items()
        )
        print(f"squad {split:8s} ({rows['questions']} questions): {line}")
        print(f"  ours - better single mode: R@3 {rows['gain_recall@3']:+.3f}, MRR@10 {rows['gain_mrr@10']:+.3f}")


def squad_paragraph_retrieval(index: DocumentIndex) -> dict:
    """Recall@3 and MRR@10 of the one gold paragraph, per mode, per split (tune, held_out)."""
    questions = read_jsonl(SQUAD / "questions.jsonl")
    out: dict = {}
    for split, articles in SQUAD_SPLITS.items():
        rows = [q for q in questions if q["doc"].split("#")[0] in articles]
        modes = {}
        for name, mode in MODES.items():
            recall3 = mrr = 0.0
            for q in rows:
                ranked: list[str] = []
                for passage in index.search(q["q"], k=30, mode=mode):
                    if passage.doc_id not in ranked:
                        ranked.append(passage.doc_id)
                ranked = ranked[:10]
                recall3 += q["doc"] in ranked[:3]
                mrr += 1 / (ranked.index(q["doc"]) + 1) if q["doc"] in ranked else 0.0
            modes[name] = {"recall@3": recall3 / len(rows), "mrr@10": mrr / len(rows)}
        out[split] = {
            "articles": list(articles),
            "questions": len(rows),
            "modes": modes,
            "gain_recall@3": modes["ours"]["recall@3"] - max(modes["bm25"]["recall@3"], modes["dense"]["recall@3"]),
            "gain_mrr@10": modes["ours"]["mrr@10"] - max(modes["bm25"]["mrr@10"], modes["dense"]["mrr@10"]),
        }
    return out


if __name__ == "__main__":
    main()
