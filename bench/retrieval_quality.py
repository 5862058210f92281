"""Retrieval quality: BM25 alone, dense alone, the old fixed fusion and the adaptive one, one run.

One index: the 5,000 MS MARCO passages (our ingestion: chunks, SQLite, FAISS, BM25), then
SQuAD's 126 paragraphs among them. Query sets:
1. MS MARCO, 43 judged queries: nDCG@10 and recall@10, and the mean search time.
2. SQuAD paragraph retrieval (one gold paragraph a question): recall@3 and MRR@10, on the tune
   articles (where the adaptive rule's three numbers were chosen) and the held-out article.
3. Lexically weak: the MS MARCO queries misspelled (bench/data/misspelled/README.md), half or all
   of their content words, as a user would type them: BM25 falls far below dense search.
4. Stress, the lexical half degraded: dense search gets the query as asked, BM25 the misspelled one,
   on every set above, so lexical search is much weaker while dense search is not.
For each, hybrid minus the better single mode with a 95% bootstrap interval (resampling
queries), for fixed 0.6 and adaptive. Sets 1-3 search through the index's own hybrid search;
set 4 fuses its two lists with the same function. Writes bench/results/retrieval_quality.json.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import statistics
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine_report
from bench.msmarco import as_documents, load, ndcg_at, recall_at
from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from retrieval.fusion import CHOSEN, FIXED_DENSE_WEIGHT, Fusion, ShareRule, adaptive_fusion, fixed_fusion
from scripts.evaluation import SQUAD, SQUAD_SPLITS, read_jsonl, squad_documents

FUSIONS: dict[str, Fusion] = {f"fixed_{FIXED_DENSE_WEIGHT}": fixed_fusion(), "adaptive": adaptive_fusion}
SINGLE = {"bm25": "lexical", "dense": "dense"}
K = 30  # passages asked for, as before: the index fuses lists of depth max(50, 4k) = 120
DEPTH = 120
# Words never misspelled (those of 4+ letters count): the list the rule's choice was made with.
STOP_WORDS = set(
    "a an the of in on at to for from by with and or but is are was were be been being what which who whom "
    "whose when where why how did do does that this these those it its as into than then there their they he "
    "she his her has have had not no can could would should will may might".split()
)


@dataclass(frozen=True)
class Query:
    dense: str  # what dense search gets
    lexical: str  # what BM25 gets (the same text, except in the stress sets)
    relevant: dict[str, int]  # document id -> grade


@dataclass(frozen=True)
class QuerySet:
    name: str
    about: str
    queries: list[Query]
    metrics: tuple[str, ...]  # the first one decides the best single mode


def misspell(text: str, share: float) -> str:
    """`share` of the content words (4+ letters, not a stop word) with one typo each: two inner
    letters swapped, one dropped or one replaced; seeded by the text, so every run is the same."""
    rng = random.Random(zlib.crc32(text.encode()))

    def typo(match: re.Match) -> str:
        word = match.group(0)
        if len(word) < 4 or word.lower() in STOP_WORDS or rng.random() >= share:
            return word
        letters, i = list(word), rng.randrange(1, len(word) - 1)
        kind = rng.randrange(3)
        if kind == 0:
            letters[i], letters[i + 1] = letters[i + 1], letters[i]
        elif kind == 1:
            del letters[i]
        else:
            letters[i] = rng.choice("abcdefghijklmnopqrstuvwxyz")
        return "".join(letters)

    return re.sub(r"[A-Za-z]+", typo, text)


def bootstrap_interval(differences: list[float], rounds: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean per-query difference, resampling queries."""
    values = np.asarray(differences)
    picks = np.random.default_rng(seed).integers(0, len(values), (rounds, len(values)))
    means = values[picks].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def query_sets(queries: dict[str, str], qrels: dict[str, dict[str, int]], alias: dict[str, str]) -> list[QuerySet]:
    """The sets as asked, misspelled, and with only their lexical half misspelled."""
    marco = [Query(t, t, {alias.get(d, d): g for d, g in qrels[q].items()}) for q, t in queries.items()]
    questions = read_jsonl(SQUAD / "questions.jsonl")
    squad = {
        split: [Query(q["q"], q["q"], {q["doc"]: 1}) for q in questions if q["doc"].split("#")[0] in articles]
        for split, articles in SQUAD_SPLITS.items()
    }
    marco_metrics, squad_metrics = ("ndcg@10", "recall@10"), ("recall@3", "mrr@10")
    sets = [
        QuerySet("msmarco", "MS MARCO, judged queries", marco, marco_metrics),
        QuerySet("squad_tune", "SQuAD tune articles (the rule was chosen here)", squad["tune"], squad_metrics),
        QuerySet("squad_held_out", "SQuAD held-out article", squad["held_out"], squad_metrics),
    ]
    for share, label in ((0.5, "half"), (1.0, "all")):
        typed = [Query(misspell(q.dense, share), misspell(q.dense, share), q.relevant) for q in marco]
        sets.append(
            QuerySet(
                f"msmarco_misspelled_{label}", f"lexically weak: {label} content words misspelled", typed, marco_metrics
            )
        )
    for base in sets[:3]:
        for share, label in ((0.5, "half"), (1.0, "all")):
            degraded = [Query(q.dense, misspell(q.dense, share), q.relevant) for q in base.queries]
            about = f"stress: BM25 gets {label} content words misspelled, dense the query as asked"
            sets.append(QuerySet(f"{base.name}_lexical_{label}_misspelled", about, degraded, base.metrics))
    return sets


def documents(ranked: list[tuple[int, float]], doc_of: dict[int, str]) -> list[str]:
    """Document ids in rank order, each once (a document may have several chunks)."""
    out: list[str] = []
    for chunk, _ in ranked[:K]:
        if doc_of[chunk] not in out:
            out.append(doc_of[chunk])
    return out


def score(ranked: list[str], relevant: dict[str, int], metrics: tuple[str, ...]) -> dict[str, float]:
    """nDCG@10 and recall@10 (graded MS MARCO), or recall@3 and MRR@10 (one gold paragraph)."""
    if "ndcg@10" in metrics:
        return {"ndcg@10": ndcg_at(ranked, relevant), "recall@10": recall_at(ranked, relevant)}
    gold = next(iter(relevant))
    top = ranked[:10]
    return {"recall@3": float(gold in top[:3]), "mrr@10": 1 / (top.index(gold) + 1) if gold in top else 0.0}


def run_query(index: DocumentIndex, query: Query, metrics: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Every condition's metrics for one query. As asked, the fusions go through the index's own
    hybrid search; with a degraded lexical half, its two lists are fused by the same functions."""
    found = {
        name: index.search(text, k=DEPTH, mode=SINGLE[name])
        for name, text in (("dense", query.dense), ("bm25", query.lexical))
    }
    doc_of = {p.chunk_id: p.doc_id for hits in found.values() for p in hits}
    lists = {name: [(p.chunk_id, p.score) for p in hits] for name, hits in found.items()}
    ranked = {name: documents(lists[name], doc_of) for name in SINGLE}
    for name, fusion in FUSIONS.items():
        if query.dense == query.lexical:
            index.fusion = fusion
            ranked[name] = list(dict.fromkeys(p.doc_id for p in index.search(query.dense, k=K, mode="hybrid")))
        else:
            ranked[name] = documents(fusion(lists["dense"], lists["bm25"]), doc_of)
    index.fusion = adaptive_fusion
    return {name: score(docs, query.relevant, metrics) for name, docs in ranked.items()}


def measure(index: DocumentIndex, query_set: QuerySet) -> dict:
    """Means per condition, and each fusion minus the better single mode with its interval."""
    rows = [run_query(index, q, query_set.metrics) for q in query_set.queries]
    conditions = [*SINGLE, *FUSIONS]
    modes = {c: {m: statistics.mean(r[c][m] for r in rows) for m in query_set.metrics} for c in conditions}
    best = max(SINGLE, key=lambda c: modes[c][query_set.metrics[0]])
    gains = {}
    for fusion in FUSIONS:
        gains[fusion] = {}
        for metric in query_set.metrics:
            per_query = [r[fusion][metric] - r[best][metric] for r in rows]
            low, high = bootstrap_interval(per_query)
            gains[fusion][metric] = {"gain": statistics.mean(per_query), "interval_95": [low, high]}
    return {
        "about": query_set.about,
        "queries": len(rows),
        "modes": modes,
        "best_single": best,
        "vs_best_single": gains,
    }


def lists_of(index: DocumentIndex, query: Query) -> tuple[list, list, dict[int, str]]:
    """The query's dense and BM25 lists (depth 120, as the index fuses them) and each chunk's document."""
    dense = index.search(query.dense, k=DEPTH, mode="dense")
    lexical = index.search(query.lexical, k=DEPTH, mode="lexical")
    doc_of = {p.chunk_id: p.doc_id for p in dense + lexical}
    return [(p.chunk_id, p.score) for p in dense], [(p.chunk_id, p.score) for p in lexical], doc_of


def candidates() -> dict[str, Fusion]:
    """Every rule the choice weighed: fixed weights, and share rules over a grid."""
    out: dict[str, Fusion] = {f"fixed {w}": fixed_fusion(w) for w in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9)}
    for rank, slope, discount, cap in itertools.product(
        (5, 10, 20), (0.6, 0.8, 1.0, 1.2, 1.5), (0.0, 0.5), (0.4, 0.5, 0.6)
    ):
        out[f"share rank {rank} slope {slope} discount {discount} cap {cap}"] = ShareRule(rank, slope, discount, cap)
    return out


def choose(index: DocumentIndex, tune: list[QuerySet]) -> list[dict]:
    """Each candidate's worst gain over the better single mode across the tune conditions (recall@3,
    then MRR@10 to break ties), best first: the first is the rule fusion.py uses."""
    rows = {s.name: [(lists_of(index, q), q.relevant) for q in s.queries] for s in tune}

    def mean(fusion: Fusion | None, name: str, metric: str, single: str = "") -> float:
        scores = []
        for (dense, lexical, doc_of), relevant in rows[name]:
            ranked = fusion(dense, lexical) if fusion else (dense if single == "dense" else lexical)
            scores.append(score(documents(ranked, doc_of), relevant, ("recall@3",))[metric])
        return statistics.mean(scores)

    best = {(n, m): max(mean(None, n, m, s) for s in SINGLE) for n in rows for m in ("recall@3", "mrr@10")}
    table = []
    for label, fusion in candidates().items():
        worst = {m: min(mean(fusion, n, m) - best[n, m] for n in rows) for m in ("recall@3", "mrr@10")}
        table.append({"rule": label, "worst_gain_recall@3": worst["recall@3"], "worst_gain_mrr@10": worst["mrr@10"]})
    table.sort(key=lambda r: (round(r["worst_gain_recall@3"], 9), r["worst_gain_mrr@10"]), reverse=True)
    return table


def search_ms(index: DocumentIndex, texts: list[str]) -> dict[str, float]:
    """Mean time of one search per mode, in milliseconds."""
    out = {}
    for name, mode in (*SINGLE.items(), ("adaptive", "hybrid")):
        start = time.perf_counter()
        for text in texts:
            index.search(text, k=K, mode=mode)
        out[name] = 1000 * (time.perf_counter() - start) / len(texts)
    return out


def main() -> None:
    corpus, queries, qrels = load()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(__file__).resolve().parent.parent / "index_data" / "embedders"
        index = DocumentIndex(Path(tmp), Embedder(cache_root=cache))
        start = time.perf_counter()
        added = index.add_documents(as_documents(corpus))
        index_seconds = time.perf_counter() - start
        # A passage that repeats another's text is stored once; judge it under the kept id.
        alias = {d["_id"]: r.doc_id for d, r in zip(corpus, added)}
        search_times = search_ms(index, list(queries.values()))
        chunks = index.stats()["chunks"]
        index.add_documents(squad_documents())
        sets = query_sets(queries, qrels, alias)
        choice = choose(index, [s for s in sets if s.name.startswith("squad_tune")])
        results = {s.name: measure(index, s) for s in sets}
    report = {
        "benchmark": "retrieval_quality",
        "machine": machine_report(),
        "index": f"msmarco subset (5,000 passages), then SQuAD dev's 126 paragraphs; {chunks} chunks before SQuAD",
        "index_seconds": index_seconds,
        "mean_search_ms_msmarco": search_times,
        "adaptive_rule": {
            "lexical_share": "min(cap, slope * max(0, fall_off(bm25) - discount * fall_off(dense)))",
            "fall_off": "1 - score at `rank` / top score (0 below a list's end)",
            "used": {"rank": CHOSEN.rank, "slope": CHOSEN.slope, "discount": CHOSEN.discount, "cap": CHOSEN.cap},
            "chosen_on": "squad_tune, squad_tune_lexical_half_misspelled, squad_tune_lexical_all_misspelled",
            "candidates_best_first": choice,
        },
        "target": "each fusion within 0.005 of the better single mode (first metric), or above it",
        "sets": results,
    }
    out = Path(__file__).parent / "results" / "retrieval_quality.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"choice on the tune articles, best first: {[row['rule'] for row in choice[:3]]}")
    print_report(results)


def print_report(results: dict) -> None:
    for name, r in results.items():
        metric = next(iter(r["modes"]["dense"]))
        means = "  ".join(f"{c} {m[metric]:.3f}" for c, m in r["modes"].items())
        gains = "  ".join(
            f"{f} {g[metric]['gain']:+.3f} [{g[metric]['interval_95'][0]:+.3f}, {g[metric]['interval_95'][1]:+.3f}]"
            for f, g in r["vs_best_single"].items()
        )
        print(f"{name:42s} ({r['queries']:3d}) {metric}: {means}\n{'':48s}minus {r['best_single']}: {gains}")


if __name__ == "__main__":
    main()
