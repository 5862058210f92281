"""Score fusion keeps how far apart the scores are, which rank fusion throws away; and the lexical
list gets a say only as far as its own scores show it found something."""

from __future__ import annotations

import random

from retrieval.fusion import (
    LEXICAL_SHARE_MAX,
    adaptive_fusion,
    fall_off,
    fixed_fusion,
    lexical_share,
    min_max,
    score_fusion,
)


def ids(ranking: list[tuple[int, float]]) -> list[int]:
    return [item for item, _ in ranking]


def dense_list(n: int = 30, seed: int = 0) -> list[tuple[int, float]]:
    """Cosines falling from 0.62 to about 0.40, as MiniLM gives on a real index."""
    rng = random.Random(seed)
    return [(100 + i, 0.62 - 0.0075 * i - 0.001 * rng.random()) for i in range(n)]


def test_a_clear_dense_winner_stays_first_among_near_equal_lexical_scores() -> None:
    dense = [(1, 0.90), (2, 0.40), (3, 0.38)]
    lexical = [(3, 7.02), (2, 7.01), (1, 7.00)]  # BM25 barely tells them apart
    assert ids(score_fusion([dense, lexical], [0.6, 0.4])) == [1, 3, 2]


def test_an_item_from_one_list_only_counts_as_that_lists_lowest() -> None:
    fused = dict(score_fusion([[(1, 0.8), (2, 0.2)], [(3, 5.0), (1, 1.0)]], [0.5, 0.5]))
    assert fused == {1: 0.5, 3: 0.5, 2: 0.0}
    assert min_max([(4, 2.0), (5, 2.0)]) == {4: 1.0, 5: 1.0} and score_fusion([[], []], [0.5, 0.5]) == []


def test_a_flat_lexical_list_leaves_the_dense_ranking_as_it_is() -> None:
    # Misspelled or common query words: 30 chunks match about equally, in an order of their own.
    dense = dense_list()
    lexical = [(100 + i, 3.00 + 0.002 * ((7 * i) % 30)) for i in range(29, -1, -1)]
    assert fall_off(lexical) < 0.02 and lexical_share(dense, lexical) == 0.0
    assert ids(adaptive_fusion(dense, lexical)) == ids(dense)
    # The fixed weight lets those near-ties reorder dense search's ranking.
    assert ids(fixed_fusion(0.6)(dense, lexical))[:10] != ids(dense)[:10]


def test_a_lexical_list_that_found_one_chunk_moves_it_up() -> None:
    # An exact code: one chunk shares the query's rare word; dense search ranks it 12th.
    dense = dense_list()
    lexical = [(111, 9.5)]
    assert fall_off(lexical) == 1.0 and lexical_share(dense, lexical) == LEXICAL_SHARE_MAX
    assert ids(adaptive_fusion(dense, lexical))[0] == 111


def test_a_flat_dense_list_follows_a_decisive_lexical_one() -> None:
    dense = [(i, 0.5) for i in range(20)]  # the embedder cannot tell these chunks apart
    lexical = [((7 * i) % 20, 12.0 * 0.8**i) for i in range(20)]  # BM25's scores fall fast
    assert lexical_share(dense, lexical) == LEXICAL_SHARE_MAX
    assert ids(adaptive_fusion(dense, lexical)) == ids(lexical)


def test_one_list_alone_is_returned_in_its_own_order() -> None:
    dense, lexical = dense_list(), [(7, 4.0), (8, 2.5), (9, 1.0)]
    assert ids(adaptive_fusion(dense, [])) == ids(dense)
    assert ids(adaptive_fusion([], lexical)) == ids(lexical)
    assert adaptive_fusion([], []) == []


def test_the_lexical_share_stays_between_none_and_the_old_fixed_weight() -> None:
    rng = random.Random(3)
    for _ in range(500):
        dense = sorted(((i, rng.uniform(-0.2, 0.9)) for i in range(rng.randint(1, 60))), key=lambda p: -p[1])
        lexical = sorted(((i, rng.uniform(0.0, 20.0)) for i in range(rng.randint(0, 60))), key=lambda p: -p[1])
        share = lexical_share(dense, lexical)
        assert 0.0 <= share <= LEXICAL_SHARE_MAX and 0.0 <= fall_off(dense) <= 1.0
        # Two lists that agree on the order give that order, whatever the share.
        same = [(item, 10.0 * (1 + s)) for item, s in dense]
        assert ids(adaptive_fusion(dense, same)) == ids(dense)
