"""Signals the units decide on, computed the same way for the heuristic and learned units."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from query_unit.content_words import FUNCTION_WORDS, is_content_piece
from query_unit.types import QuestionSignals, TokenStep


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    surprisal: float  # nats: -log p of all its pieces, in context


def question_words(signals: QuestionSignals) -> list[Word]:
    """Join pieces into words (a piece starting with a space or punctuation starts a new one)."""
    words: list[Word] = []
    text, total = "", 0.0
    for piece, logprob in zip(signals.pieces, signals.logprobs):
        starts = piece[:1].isspace() or not piece[:1].isalnum() or not text
        if starts and text:
            words.append(Word(text, total))
            text, total = "", 0.0
        text += piece
        total += -logprob if math.isfinite(logprob) else 0.0
    if text:
        words.append(Word(text, total))
    return words


def content_words(signals: QuestionSignals) -> list[Word]:
    """Content words after the first (which has no context to be expected from), each at its
    last mention: a word the prompt defines before asking about it is no longer surprising."""
    last: dict[str, Word] = {}
    for n, word in enumerate(question_words(signals)):
        bare = word.text.strip(" \t\n?!.,:;\"'()").lower()
        if n == 0 or not bare or bare in FUNCTION_WORDS or not any(c.isalnum() for c in bare):
            continue
        last.pop(bare, None)
        last[bare] = word
    return list(last.values())


QUESTION_FEATURES = ("max_surprisal", "second_surprisal", "rare_words", "local_similarity", "words")


class QuestionFeatures:
    """The question's signals. The best local match costs a search, so it is looked up only
    when a decision asks for it (the heuristic gate rarely does)."""

    def __init__(self, signals: QuestionSignals | None, local_similarity: Callable[[], float]) -> None:
        words = content_words(signals) if signals is not None else []
        surprisals = sorted((w.surprisal for w in words), reverse=True) + [0.0, 0.0]
        self.max_surprisal = surprisals[0]
        self.second_surprisal = surprisals[1]
        self.rare_words = float(sum(s >= 10.0 for s in surprisals))
        self.words = float(len(words))
        self.hidden = signals.hidden if signals is not None else None
        self._lookup = local_similarity
        self._similarity: float | None = None

    @property
    def local_similarity(self) -> float:
        if self._similarity is None:
            self._similarity = self._lookup()
        return self._similarity

    def as_list(self) -> list[float]:
        """In the order of QUESTION_FEATURES."""
        return [self.max_surprisal, self.second_surprisal, self.rare_words, self.local_similarity, self.words]


def question_features(signals: QuestionSignals | None, local_similarity: float) -> list[float]:
    return QuestionFeatures(signals, lambda: local_similarity).as_list()


TOKEN_FEATURES = (
    "surprisal",
    "entropy",
    "margin",
    "sentence_min_prob",
    "sentence_low_count",
    "is_number",
    "is_capitalized",
    "log_position",
    "after_evidence",
)


class SentenceState:
    """Running aggregates over the content tokens of the sentence being written."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.min_prob = 1.0
        self.low_count = 0

    def features(self, step: TokenStep, position: int, after_evidence: bool) -> list[float]:
        word = step.text.strip()
        return [
            -math.log(max(step.prob, 1e-12)),
            step.entropy,
            step.margin,
            min(self.min_prob, step.prob),
            float(self.low_count + (step.prob < 0.3)),
            float(any(c.isdigit() for c in word)),
            float(word[:1].isupper()),
            math.log1p(position),
            float(after_evidence),
        ]

    def update(self, step: TokenStep) -> None:
        if is_content_piece(step.text):
            self.min_prob = min(self.min_prob, step.prob)
            self.low_count += step.prob < 0.3
