"""The answer faults the quality benchmark counts: each one found, and none in a plain answer."""

from __future__ import annotations

from scripts.evaluation import answer_faults

EVIDENCE = [
    "The Tarn Swimmers are a semi-professional water polo club based in Oslo. It was founded in 1901 by Ann Vik."
]


def test_an_echo_of_the_question() -> None:
    assert answer_faults(
        "What did Ola Brenn prove in 2014? He proved it.", "What did Ola Brenn prove in 2014?", []
    ) == {"echo"}


def test_the_evidence_restated_instead_of_answered() -> None:
    faults = answer_faults(
        "The Tarn Swimmers are a semi-professional water polo club based in Oslo [1].",
        "Who founded the Tarn Swimmers?",
        EVIDENCE,
    )
    assert faults == {"evidence_copy"}


def test_another_language() -> None:
    assert answer_faults(
        "La femme de France, le Grand Croix, est le Grand Croix de la femme.", "What is the capital of France?", []
    ) == {"other_language"}


def test_a_plain_answer_has_no_fault() -> None:
    assert (
        answer_faults(
            "It was founded in 1901 by Ann Vik, a swimming coach.", "Who founded the Tarn Swimmers?", EVIDENCE
        )
        == set()
    )
