"""Loading the MS MARCO subset in ../shared/data/msmarco and scoring rankings against it."""

from __future__ import annotations

import json
import math
from pathlib import Path

from retrieval.ingest_plan import DocumentInput

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "msmarco"
# The 5,000 passages that answer-quality benchmarks mix their documents into, as distractors.
CORPUS = DATA / "corpus.jsonl"


def _jsonl(path: Path) -> list[dict]:
    # Some passages contain U+2028, which str.splitlines() would split on.
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def load(data: Path = DATA) -> tuple[list[dict], dict[str, str], dict[str, dict[str, int]]]:
    corpus = _jsonl(data / "corpus.jsonl")
    queries = {q["_id"]: q["text"] for q in _jsonl(data / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    for line in (data / "qrels" / "test.tsv").read_text().split("\n"):
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].strip().isdigit():
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return corpus, {q: t for q, t in queries.items() if q in qrels}, qrels


def as_documents(corpus: list[dict]) -> list[DocumentInput]:
    """The passages as the index is given them: each under its MS MARCO id (titles are empty)."""
    return [DocumentInput(d["text"], d.get("title", ""), f"msmarco:{d['_id']}", d["_id"]) for d in corpus]


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    dcg = sum((2 ** relevant.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    hits = {d for d, g in relevant.items() if g > 0}
    return len(hits & set(ranked[:k])) / len(hits) if hits else 0.0
