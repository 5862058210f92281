"""The first heuristic unit, fed token steps by hand and searching a real FAISS index."""

from __future__ import annotations

import pytest

from query_unit.content_words import ends_sentence, is_content_piece
from query_unit.simple import SimpleQueryUnit, SimpleUnitConfig
from query_unit.types import TokenStep
from retrieval.types import Passage


def step(text: str, prob: float) -> TokenStep:
    return TokenStep(token_id=0, text=text, prob=prob, entropy=1.0, margin=prob, top=((0, prob),))



@pytest.fixture(scope="module")
def index(starter_index):
    return starter_index


def unit(index, **config) -> SimpleQueryUnit:
    return SimpleQueryUnit(index, lambda s: len(s.split()), SimpleUnitConfig(**config))


def test_content_pieces() -> None:
    assert is_content_piece(" Vellmora") and is_content_piece("1987") and is_content_piece(" Paris")
    assert not is_content_piece(" the") and not is_content_piece(",") and not is_content_piece(" ")
    assert ends_sentence(".") and ends_sentence(" city.\n") and not ends_sentence(" Mr")


def test_unsure_content_word_pauses_at_the_sentence_start(index) -> None:
    turn = unit(index).begin_turn("Where was Zorblax Quintaro born?")
    for piece in ["He", " is", " a", " biologist", ".", " He", " was", " born", " in"]:
        assert turn.observe(step(piece, 0.9)) is None
    pause = turn.observe(step(" Nova", 0.07))
    assert pause is not None
    assert pause.keep_tokens == 5  # "He is a biologist." survives; the second sentence is redone
    assert pause.query.startswith("Where was Zorblax Quintaro born?")
    assert "was born in" in pause.query and "Nova" not in pause.query


def test_unsure_function_word_and_words_from_the_question_do_not_pause(index) -> None:
    turn = unit(index).begin_turn("Tell me about flegblarg, which means a small blue boat.")
    assert turn.observe(step(" the", 0.05)) is None
    assert turn.observe(step(" flegblarg", 0.05)) is None


def test_gather_keeps_relevant_passages_within_budget(index) -> None:
    turn = unit(index, evidence_token_budget=40).begin_turn("Who invented the Velnorian harp?")
    pause = turn.observe(step(" Nikolaus", 0.04))
    evidence = turn.gather(pause)
    assert evidence.ok and "velnorian" in evidence.passages[0].source
    assert sum(len(p.text.split()) for p in evidence.passages) <= 40 or len(evidence.passages) == 1
    assert all(p.similarity >= 0.35 for p in evidence.passages)


def test_search_cap_and_no_repeated_query(index) -> None:
    turn = unit(index, max_searches=2).begin_turn("Where was Zorblax Quintaro born?")
    first = turn.observe(step(" Nova", 0.05))
    turn.gather(first)
    turn.resumed(0)
    for piece in [" He", " was", " a", " fisher", "."]:
        turn.observe(step(piece, 0.9))
    # The same query again (nothing sure written in this sentence yet) is not asked twice.
    assert turn.observe(step(" Korvath", 0.01)) is None
    for piece in [" He", " lived", " in"]:
        turn.observe(step(piece, 0.9))
    second = turn.observe(step(" Brisk", 0.01))
    assert second is not None and second.query != first.query and "lived in" in second.query
    turn.gather(second)
    for piece in [" near", " the", " sea", ".", " His", " boat"]:
        turn.observe(step(piece, 0.9))
    assert turn.observe(step(" Tarnwick", 0.01)) is None  # the cap of 2 holds
    assert turn.searches == 2


class Down:
    def search(self, query: str, k: int = 4) -> list[Passage]:
        raise TimeoutError("search endpoint timed out")


def test_failing_search_becomes_an_error_value() -> None:
    turn = SimpleQueryUnit(Down(), lambda s: len(s.split())).begin_turn("Where was Zorblax born?")
    pause = turn.observe(step(" Nova", 0.05))
    evidence = turn.gather(pause)
    assert not evidence.ok and "timed out" in evidence.error
