"""Merging the dense and the lexical ranking into one, with a lexical share each query earns.

Convex combination of min-max normalized scores (Bruch et al., "An Analysis of Fusion
Functions for Hybrid Retrieval", 2023), not reciprocal rank fusion: RRF throws away how far
apart the scores are, so a lexical list of near-equal BM25 scores moves a clear dense winner
down (RRF was below BM25 alone on SQuAD paragraph retrieval: MRR@10 0.810 against 0.833).

No fixed weight suits every corpus. Dense 0.6 / lexical 0.4, chosen on SQuAD, where BM25 is
strong, fell below dense search alone where BM25 is much weaker (issue 22: an entity-centric
corpus, nDCG@10 0.44 against 0.47; here, MS MARCO queries whose lexical half sees them
misspelled: 0.672 against 0.698), and a weight that holds there (0.8) loses SQuAD's BM25 gains.
So each query's lexical share comes from the BM25 list itself: a list whose 10th score is close
to its first (many chunks match about equally: common words, or a pool to grade rather than a
passage to find) adds little that dense search does not know, and gets little or no say; a list
that falls off sharply has found something, and gets up to the old 0.4. The dense list's own
fall-off counts against it by half, since a sharp dense list needs less help.

The rule's numbers (rank 10, slope 1.2, discount 0.5, cap 0.4) were chosen on the SQuAD tune
articles alone, their questions as asked and with BM25's copy misspelled (bench/data/misspelled),
for the best worst case against the better single mode, among fixed weights and a grid of such
rules (bench/retrieval_quality.py weighs them all). Checked elsewhere, minus the better single
mode: MS MARCO nDCG@10 +0.010, held-out SQuAD recall@3 +0.000 (MRR@10 +0.014), misspelled MS
MARCO queries +0.017 (half the words) and -0.004 (all); with only BM25's query misspelled,
-0.007 (interval -0.020 to +0.003), where the fixed weight gave -0.026.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Ranking = list[tuple[int, float]]
# (dense ranking, lexical ranking) -> fused ranking, best first; both stores search through one.
Fusion = Callable[[Ranking, Ranking], Ranking]

FIXED_DENSE_WEIGHT = 0.6  # the weight before issue 22, kept for comparison in the benchmark


def min_max(ranking: Ranking) -> dict[int, float]:
    """Scores mapped to [0, 1] within one list (all 1.0 when they are equal)."""
    if not ranking:
        return {}
    scores = [s for _, s in ranking]
    low, high = min(scores), max(scores)
    return {item: (s - low) / (high - low) if high > low else 1.0 for item, s in ranking}


def score_fusion(rankings: list[Ranking], weights: list[float]) -> Ranking:
    """Weighted sum of each list's normalized scores; an item missing from a list gets that
    list's lowest (0), as if it had ranked just below its depth."""
    normalized = [min_max(r) for r in rankings]
    items = {item for n in normalized for item in n}
    fused = {item: sum(w * n.get(item, 0.0) for n, w in zip(normalized, weights)) for item in items}
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


def fall_off(ranking: Ranking, rank: int = 10) -> float:
    """1 - (rank-th score / top score), in [0, 1]: 0 for a flat list, 1 when nothing else scores.
    Below a list's end the score is 0, as BM25 gives a chunk that shares no word with the query."""
    scores = sorted((s for _, s in ranking), reverse=True)
    if not scores or scores[0] <= 0:
        return 0.0
    kth = scores[rank - 1] if len(scores) >= rank else 0.0
    return min(1.0, max(0.0, 1.0 - kth / scores[0]))


@dataclass(frozen=True)
class ShareRule:
    """How a query's lexical share follows from its two lists; the defaults are the chosen rule."""

    rank: int = 10  # the fall-off is measured from a list's top score to its 10th
    slope: float = 1.2  # lexical share per unit of the lexical list's fall-off
    discount: float = 0.5  # the part of the dense list's fall-off subtracted from it
    cap: float = 0.4  # never more lexical weight than the fixed fusion gave

    def share(self, dense: Ranking, lexical: Ranking) -> float:
        """The lexical list's weight, from 0 (follow dense) to `cap`; 1 with no dense list."""
        if not dense:
            return 1.0
        earned = self.slope * (fall_off(lexical, self.rank) - self.discount * fall_off(dense, self.rank))
        return min(self.cap, max(0.0, earned))

    def __call__(self, dense: Ranking, lexical: Ranking) -> Ranking:
        share = self.share(dense, lexical)
        return score_fusion([dense, lexical], [1.0 - share, share])


CHOSEN = ShareRule()
LEXICAL_SHARE_MAX = CHOSEN.cap


def lexical_share(dense: Ranking, lexical: Ranking) -> float:
    """This query's lexical weight under the chosen rule."""
    return CHOSEN.share(dense, lexical)


def adaptive_fusion(dense: Ranking, lexical: Ranking) -> Ranking:
    """The hybrid ranking both stores return: min-max fusion with this query's lexical share."""
    return CHOSEN(dense, lexical)


def fixed_fusion(dense_weight: float = FIXED_DENSE_WEIGHT) -> Fusion:
    """Min-max fusion with one weight for every query: the rule before issue 22, for comparison."""
    return lambda dense, lexical: score_fusion([dense, lexical], [dense_weight, 1.0 - dense_weight])
