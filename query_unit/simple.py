"""A first heuristic unit: pause on a low-probability content token, query with the rest.

It keeps per-turn state only: where the current sentence began, which tokens were sure, how
many searches were made, and which queries were already asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from query_unit.content_words import ends_sentence, is_content_piece
from query_unit.protocol import Searcher
from query_unit.reader import Embed, read
from query_unit.types import Evidence, Pause, QuestionSignals, TokenStep
from retrieval.types import Passage


@dataclass(frozen=True, slots=True)
class SimpleUnitConfig:
    prob_threshold: float = 0.3
    max_searches: int = 3
    evidence_token_budget: int = 120
    passages_per_search: int = 4
    # Passages less similar than this to the query are not evidence of anything.
    min_passage_score: float = 0.35
    # With evidence in context the model paraphrases it, less sure of each word: pause only
    # when it is far less sure than this fraction of the usual threshold.
    after_evidence_factor: float = 0.5
    # Search before the first token when the best local match is at least this similar (None: off).
    pre_generation_similarity: float | None = None


class SimpleQueryUnit:
    def __init__(
        self,
        searcher: Searcher,
        count_tokens: Callable[[str], int],
        config: SimpleUnitConfig = SimpleUnitConfig(),
        embed: Embed | None = None,
    ) -> None:
        self.searcher = searcher
        self.count_tokens = count_tokens
        self.embed = embed  # for the sentence reader; without it whole passages are used
        self.config = config

    def begin_turn(self, question: str) -> "SimpleTurn":
        return SimpleTurn(self, question)


class SimpleTurn:
    def __init__(self, unit: SimpleQueryUnit, question: str) -> None:
        self.unit = unit
        self.question = question
        self.pieces: list[str] = []  # kept tokens of the current answer segment
        self.sure: list[bool] = []
        self.sentence_start = 0
        self.searches = 0
        self.asked: set[str] = set()
        self.shown: set[str] = set()
        # Words the model may say without being unsure of them: the user's and the evidence's.
        self.known_text = question.lower()
        self._prefetched: list[Passage] | None = None

    def before_generation(self, question: QuestionSignals | None = None) -> Pause | None:
        gate = self.unit.config.pre_generation_similarity
        if gate is None or not self._may_search(self.question):
            return None
        try:
            found = self.unit.searcher.search(self.question, self.unit.config.passages_per_search)
        except Exception:  # the gate is only a hint; a failing search is reported when it matters
            return None
        if found and _similarity(found[0]) >= gate:
            self._prefetched = found
            return Pause(reason=f"the question matches the index ({_similarity(found[0]):.2f})", query=self.question, keep_tokens=0)
        return None

    def observe(self, step: TokenStep) -> Pause | None:
        content = is_content_piece(step.text)
        grounded = step.text.strip().lower() in self.known_text
        # The sentence right after an evidence block is the one that evidence was for:
        # searching again before it ends only stacks blocks on an answer not yet given.
        settling = bool(self.shown) and self.sentence_start == 0
        if content and not grounded and not settling and step.prob < self._threshold():
            query = self._query(trigger=step.text)
            if self._may_search(query):
                return Pause(
                    reason=f"unsure of {step.text.strip()!r} (p={step.prob:.2f})",
                    query=query,
                    keep_tokens=self.sentence_start,
                    trigger_text=step.text,
                )
        self.pieces.append(step.text)
        self.sure.append(not content or step.prob >= self._threshold())
        if ends_sentence(step.text):
            self.sentence_start = len(self.pieces)
        return None

    def gather(self, pause: Pause) -> Evidence:
        self.searches += 1
        self.asked.add(_normal(pause.query))
        found, self._prefetched = self._prefetched, None
        if found is None:
            try:
                found = self.unit.searcher.search(pause.query, self.unit.config.passages_per_search)
            except Exception as exc:  # a failed search never ends the answer
                return Evidence(query=pause.query, error=f"search failed: {exc}")
        # Passages already in the context would only repeat themselves: a pause needs new ones.
        # Web results carry no similarity: the reader ranks their sentences instead.
        fresh = [
            p for p in found
            if (p.similarity is None or p.similarity >= self.unit.config.min_passage_score)
            and p.text not in self.shown
        ]
        if self.unit.embed is not None:
            kept = read(pause.query, fresh, self.unit.embed, self.unit.count_tokens, self.unit.config.evidence_token_budget)
        else:
            kept = self._within_budget(fresh)
        self.shown.update(p.text for p in kept)
        self.known_text += " " + " ".join(p.text.lower() for p in kept)
        return Evidence(query=pause.query, passages=tuple(kept))

    def resumed(self, kept_tokens: int) -> None:
        # The answer goes on in a new segment; the kept draft is no longer rewritable.
        self.pieces, self.sure, self.sentence_start = [], [], 0

    def _threshold(self) -> float:
        factor = self.unit.config.after_evidence_factor if self.shown else 1.0
        return self.unit.config.prob_threshold * factor

    def _may_search(self, query: str) -> bool:
        return self.searches < self.unit.config.max_searches and _normal(query) not in self.asked

    def _query(self, trigger: str) -> str:
        """The question plus the sure words of the sentence being written; unsure ones masked."""
        draft = "".join(p for p, ok in zip(self.pieces[self.sentence_start :], self.sure[self.sentence_start :]) if ok)
        return " ".join(part for part in (self.question.strip(), draft.strip()) if part)

    def _within_budget(self, passages: list[Passage]) -> list[Passage]:
        kept, used = [], 0
        for passage in passages:
            cost = self.unit.count_tokens(passage.text)
            if kept and used + cost > self.unit.config.evidence_token_budget:
                break
            kept.append(passage)
            used += cost
        return kept


def _similarity(passage: Passage) -> float:
    """Cosine to the query where the searcher gives it (comparable across searches), else its score."""
    return passage.similarity if passage.similarity is not None else passage.score


def _normal(query: str) -> str:
    return " ".join(query.lower().split())
