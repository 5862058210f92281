"""The units' turn logic, fed token steps by hand and searching a real on-disk index."""

from __future__ import annotations

import pytest

from query_unit.content_words import ends_sentence, is_content_piece
from query_unit.features import question_features
from query_unit.heuristic import HeuristicConfig, HeuristicUnit
from query_unit.turn import TurnConfig, UnitTools
from query_unit.types import FollowUp, Pause, QuestionSignals, TokenStep
from retrieval.types import Passage


def step(text: str, prob: float) -> TokenStep:
    return TokenStep(token_id=0, text=text, prob=prob, entropy=1.0, margin=prob, top=((0, prob),))


@pytest.fixture(scope="module")
def index(starter_index):
    return starter_index


def unit(index, embed=None, **config) -> HeuristicUnit:
    tools = UnitTools(index, lambda s: len(s.split()), embed=embed, local=index, config=TurnConfig(**config))
    return HeuristicUnit(tools, HeuristicConfig(prob_threshold=0.3))


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


def test_gather_reads_the_answering_sentences_within_budget(index) -> None:
    turn = unit(index, embed=index.embedder.encode, evidence_token_budget=30).begin_turn(
        "Who invented the Velnorian harp?"
    )
    pause = turn.observe(step(" Nikolaus", 0.04))
    evidence = turn.gather(pause)
    assert evidence.ok and "velnorian" in evidence.passages[0].source
    text = " ".join(p.text for p in evidence.passages)
    assert "Odile Framboux" in text and "waxed linen" not in text  # the answering sentence only
    assert sum(len(p.text.split()) for p in evidence.passages) <= 30
    assert all(p.similarity >= 0.35 for p in evidence.passages)
    # A new search finds nothing new: the same passage is not fed twice in one turn,
    # except once, as a retry, when the model ignored it.
    turn.resumed(0)
    again = turn.gather(Pause("again", "Velnorian harp inventor", 0))
    assert again.retry and again.passages == evidence.passages
    assert not turn.gather(Pause("and again", "Velnorian harp maker", 0)).passages


def test_an_answer_that_ignores_the_evidence_gets_it_once_more(index) -> None:
    turn = unit(index, embed=index.embedder.encode).begin_turn("Who invented the Velnorian harp?")
    turn.gather(turn.observe(step(" Nikolaus", 0.04)))
    turn.resumed(0)
    for piece in ["1", ".", " Who", " invented", " the", " Vel", "n", "orian", " harp", "?"]:
        assert turn.observe(step(piece, 0.9)) is None  # one sentence: it may answer next
    for piece in ["\n", "2", ".", " Who", " invented", " the", " Vel", "n", "orian"]:
        assert turn.observe(step(piece, 0.9)) is None
    retry = turn.observe(step(" harp?", 0.9))
    assert retry is not None and retry.retry and retry.keep_tokens == 0
    assert turn.gather(retry).retry
    turn.resumed(0)
    for piece in ["1", ".", " Who", " invented", " the", " harp", "?", " Who", " invented", " the", " harp"]:
        turn.observe(step(piece, 0.9))
    assert turn.observe(step("?", 0.9)) is None  # only once


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
    turn = HeuristicUnit(UnitTools(Down(), lambda s: len(s.split()))).begin_turn("Where was Zorblax born?")
    pause = turn.observe(step(" Nova", 0.01))
    evidence = turn.gather(pause)
    assert not evidence.ok and "timed out" in evidence.error


def signals(words: list[tuple[str, float]]) -> QuestionSignals:
    return QuestionSignals(tuple(w for w, _ in words), tuple(-s for _, s in words))


def test_gate_searches_for_surprising_names_but_not_for_defined_words(index) -> None:
    heuristic = unit(index)
    invented = signals([("Where", 3.0), (" was", 1.0), (" Fek", 14.0), ("lex", 12.0), (" born", 2.0), ("?", 0.5)])
    assert heuristic.begin_turn("Where was Feklex born?").before_generation(invented) is not None
    defined = signals(
        [
            ("A", 3.0),
            (" zib", 15.0),
            ("bet", 10.6),
            (" is", 1.0),
            (" a", 1.0),
            (" red", 8.3),
            (" fruit", 4.5),
            (".", 1.0),
            (" Where", 2.0),
            (" does", 1.0),
            (" a", 1.0),
            (" zib", 0.4),
            ("bet", 0.1),
            (" grow", 0.2),
            ("?", 0.3),
        ]
    )
    assert heuristic.begin_turn("A zibbet is a red fruit. Where does a zibbet grow?").before_generation(defined) is None
    known = signals(
        [("What", 3.0), (" is", 1.0), (" the", 1.0), (" capital", 6.0), (" of", 0.1), (" France", 4.0), ("?", 0.2)]
    )
    assert heuristic.begin_turn("What is the capital of France?").before_generation(known) is None


def test_gate_searches_for_a_detail_the_index_holds_though_no_word_surprises(index) -> None:
    heuristic = unit(index)
    # Every word familiar to the model, as a detail of a well-known subject reads; the starter
    # index holds the document that answers it (cosine 0.77).
    familiar = signals(
        [
            ("When", 3.0),
            (" was", 1.0),
            (" the", 1.0),
            (" D", 5.0),
            ("rovik", 4.0),
            (" Accord", 6.0),
            (" signed", 3.0),
            ("?", 0.2),
        ]
    )
    pause = heuristic.begin_turn("When was the Drovik Accord signed?").before_generation(familiar)
    assert pause is not None and "close match" in pause.reason
    # A fair match (0.47) needs an unusual word beside it; alone it is not enough.
    plain = [
        ("When", 3.0),
        (" was", 1.0),
        (" the", 1.0),
        (" treaty", 6.0),
        (" that", 1.0),
        (" fixed", 5.0),
        (" the", 0.5),
        (" price", 4.0),
        (" of", 0.2),
        (" salt", 7.0),
        (" signed", 3.0),
        ("?", 0.2),
    ]
    question = "When was the treaty that fixed the price of salt signed?"
    assert heuristic.begin_turn(question).before_generation(signals(plain)) is None
    unusual = [(w, 12.0 if w == " salt" else s) for w, s in plain]
    assert "unusual word" in heuristic.begin_turn(question).before_generation(signals(unusual)).reason


def test_learned_unit_loads_its_committed_weights_and_its_knob_is_a_rate(index) -> None:
    from query_unit.learned import LearnedUnit, LearnedWeights

    weights = LearnedWeights.load()
    assert weights.threshold(0.2) > weights.threshold(0.5) > weights.threshold(0.9)
    tools = UnitTools(index, lambda s: len(s.split()), local=index)
    frugal, eager = LearnedUnit(tools, weights, target_rate=0.1), LearnedUnit(tools, weights, target_rate=0.95)
    assert frugal.threshold > eager.threshold
    # It learned that a search pays when the name is unfamiliar and the index knows it.
    invented = signals(
        [
            ("Where", 3.0),
            (" was", 1.0),
            (" Z", 9.0),
            ("orbl", 12.0),
            ("ax", 8.0),
            (" Quint", 20.0),
            ("aro", 9.0),
            (" born", 2.0),
        ]
    )
    known = signals(
        [("What", 3.0), (" is", 1.0), (" the", 1.0), (" capital", 6.0), (" of", 0.1), (" France", 4.0), ("?", 0.2)]
    )
    assert weights.uses_hidden_states and weights.gate_hidden is not None
    assert len(weights.gate.coef) == len(question_features(known, 0.7)) + len(weights.gate_hidden.components)

    def gate(question, similarity: float) -> float:  # without hidden states: as an engine that has none
        return weights.gate.score(weights.gate_features(question_features(question, similarity), None))

    assert gate(invented, 0.7) > gate(known, 0.7)
    assert gate(invented, 0.7) > gate(invented, 0.1)
    assert eager.begin_turn("Where was Zorblax Quintaro born?").before_generation(invented) is not None
    assert frugal.begin_turn("What is the capital of France?").before_generation(known) is None


def test_a_follow_up_on_a_sourced_subject_searches_for_it_first(index) -> None:
    earlier = FollowUp("Who invented the Velnorian harp?", sourced=True)
    turn = unit(index, embed=index.embedder.encode).begin_turn("What are its strings made of?", earlier)
    pause = turn.before_generation(None)
    assert pause is not None and pause.keep_tokens == 0
    assert pause.query == "What are its strings made of? Who invented the Velnorian harp?"
    evidence = turn.gather(pause)
    text = " ".join(p.text for p in evidence.passages)
    # The earlier question found the passage; the sentences chosen answer the question asked now.
    assert "velnorian" in evidence.passages[0].source and "waxed linen" in text
    assert turn.observe(step(" Velnorian", 0.05)) is None, "the subject's words are the user's own"


def test_a_follow_up_without_sources_behind_it_is_left_to_the_gate(index) -> None:
    earlier = FollowUp("What is the capital of France?", sourced=False)
    turn = unit(index).begin_turn("What river runs through it?", earlier)
    assert turn.before_generation(None) is None
    pause = turn.observe(step(" Loire", 0.05))
    assert pause is not None and pause.query.startswith("What river runs through it? What is the capital of France?")


def test_a_question_that_names_its_own_subject_starts_afresh(index) -> None:
    earlier = FollowUp("Who invented the Velnorian harp?", sourced=True)
    turn = unit(index).begin_turn("What is the capital of Japan?", earlier)
    assert turn.before_generation(None) is None, "no search for the harp's sake"
    pause = turn.observe(step(" Kyoto", 0.05))
    assert pause is not None and "Velnorian" not in pause.query


def test_which_questions_refer_back() -> None:
    from query_unit.content_words import refers_back

    assert refers_back("In what year was it invented?") and refers_back("What is its profession?")
    assert refers_back("Why?") and refers_back("And then?")
    assert not refers_back("Who wrote Hamlet?") and not refers_back("What is 7 times 8?")
    # A question that defines its own words points back only inside itself.
    assert not refers_back("We call our robot Bexley, and it was built in 2020. When was Bexley built?")
