"""Merging ranked lists from different retrievers."""

from __future__ import annotations


def reciprocal_rank_fusion(rankings: list[list[tuple[int, float]]], k: int = 60, weights: list[float] | None = None) -> list[tuple[int, float]]:
    """RRF (Cormack et al. 2009): sum of weight / (k + rank) over the lists an item appears in."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, (item, _) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: pair[1], reverse=True)
