"""Score fusion keeps how far apart the scores are, which rank fusion throws away."""

from __future__ import annotations

from retrieval.fusion import min_max, score_fusion


def test_a_clear_dense_winner_stays_first_among_near_equal_lexical_scores() -> None:
    dense = [(1, 0.90), (2, 0.40), (3, 0.38)]
    lexical = [(3, 7.02), (2, 7.01), (1, 7.00)]  # BM25 barely tells them apart
    fused = score_fusion([dense, lexical], [0.6, 0.4])
    assert [item for item, _ in fused] == [1, 3, 2]


def test_an_item_from_one_list_only_counts_as_that_lists_lowest() -> None:
    fused = dict(score_fusion([[(1, 0.8), (2, 0.2)], [(3, 5.0), (1, 1.0)]], [0.5, 0.5]))
    assert fused == {1: 0.5, 3: 0.5, 2: 0.0}
    assert min_max([(4, 2.0), (5, 2.0)]) == {4: 1.0, 5: 1.0} and score_fusion([[], []], [0.5, 0.5]) == []
