"""Merging the dense and the lexical ranking into one.

Convex combination of min-max normalized scores (Bruch et al., "An Analysis of Fusion
Functions for Hybrid Retrieval", 2023), not reciprocal rank fusion: RRF throws away how far
apart the scores are, so a lexical list of near-equal BM25 scores moves a clear dense winner
down. Measured by bench/retrieval_quality.py, weight 0.6 on dense chosen on the SQuAD tune
articles: RRF (dense 1, lexical 0.5) was below BM25 alone on SQuAD paragraph retrieval (MRR@10
0.810 against 0.833); this fusion is above the better single mode on SQuAD (tune and held-out)
and on MS MARCO.
"""

from __future__ import annotations

DENSE_WEIGHT = 0.6


def min_max(ranking: list[tuple[int, float]]) -> dict[int, float]:
    """Scores mapped to [0, 1] within one list (all 1.0 when they are equal)."""
    if not ranking:
        return {}
    scores = [s for _, s in ranking]
    low, high = min(scores), max(scores)
    return {item: (s - low) / (high - low) if high > low else 1.0 for item, s in ranking}


def score_fusion(rankings: list[list[tuple[int, float]]], weights: list[float]) -> list[tuple[int, float]]:
    """Weighted sum of each list's normalized scores; an item missing from a list gets that
    list's lowest (0), as if it had ranked just below its depth."""
    normalized = [min_max(r) for r in rankings]
    items = {item for n in normalized for item in n}
    fused = {item: sum(w * n.get(item, 0.0) for n, w in zip(normalized, weights)) for item in items}
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))
