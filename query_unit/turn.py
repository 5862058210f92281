"""What every unit does in a turn, whatever decides when: follow the draft sentence by
sentence, build queries, cap and deduplicate searches, and read what comes back.

A unit supplies two decisions: `gate` before the first token (from the question's signals)
and `check` on each content token while the answer is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from query_unit.content_words import ends_sentence, is_content_piece, refers_back, words
from query_unit.features import QuestionFeatures, SentenceState
from query_unit.reader import Embed, read
from query_unit.types import Evidence, FollowUp, Pause, QuestionSignals, TokenStep
from retrieval.chunking import ends_in_abbreviation, sentence_spans
from retrieval.types import Passage, Searcher, similarity


@dataclass(frozen=True, slots=True)
class TurnConfig:
    max_searches: int = 3
    evidence_token_budget: int = 120
    # The reader keeps sentences scoring within this much of the best one.
    reader_margin: float = 0.15
    passages_per_search: int = 4
    # Local passages less similar than this to the query are not evidence of anything.
    min_passage_score: float = 0.35


@dataclass
class UnitTools:
    """What a unit works with, handed in by the service."""

    searcher: Searcher  # where queries go (local first, the web when configured)
    count_tokens: Callable[[str], int]
    embed: Embed | None = None  # the sentence reader; without it whole passages are used
    local: Searcher | None = None  # the local index, for the question's best-match feature
    config: TurnConfig = TurnConfig()


class BaseTurn:
    def __init__(self, tools: UnitTools, question: str, follow_up: FollowUp | None = None) -> None:
        self.tools = tools
        self.config = tools.config
        self.question = question
        # A question that names its own subject starts afresh, whatever came before it.
        self.follow_up = follow_up if follow_up is not None and refers_back(question) else None
        # What searches are about: the question, and in a follow-up the question it refers back to.
        topic = self.follow_up.topic.strip() if self.follow_up else ""
        self.subject = " ".join(part for part in (question.strip(), topic) if part)
        self.pieces: list[str] = []  # kept tokens of the current answer segment
        self.sure: list[bool] = []
        self.sentence_start = 0
        self.position = 0  # answer tokens kept so far, all segments
        self.sentence = SentenceState()
        self.searches = 0
        self.asked: set[str] = set()
        self.shown: set[tuple[str, int]] = set()  # passages already in the context
        self.given: list[Passage] = []  # what was fed back, as read
        self.question_features: QuestionFeatures | None = None  # set before the first token
        self.retried = False
        # Words the model may say without being unsure of them: the user's and the evidence's.
        self.known_words: set[str] = set(words(self.subject))
        self.evidence_words: set[str] = set()  # the evidence's words that the question lacks
        self.partial = ""  # the word being written, piece by piece
        self.end_pending = False  # the last token closed a sentence, unless the next one goes on

    # --- decisions a unit makes ----------------------------------------------------------
    def gate(self, features: QuestionFeatures) -> str | None:
        """A reason to search before answering, or None."""
        return None

    def check(self, step: TokenStep, features: list[float]) -> str | None:
        """A reason to pause at this content token, or None."""
        return None

    # --- the protocol ---------------------------------------------------------------------
    def before_generation(self, question: QuestionSignals | None = None) -> Pause | None:
        features = QuestionFeatures(question, self.local_similarity)
        self.question_features = features
        reason = self.gate(features)
        if reason is None and self.follow_up is not None and self.follow_up.sourced:
            # The subject needed sources a turn ago; a follow-up on it needs them again, however
            # plain its own words ("what are its strings made of?").
            reason = "a follow-up to an answer drawn from sources"
        if reason is None or not self._may_search(self.subject):
            return None
        return Pause(reason=reason, query=self.subject, keep_tokens=0)

    def local_similarity(self) -> float:
        local = self.tools.local
        if local is None:
            return 0.0
        try:
            found = local.search(self.subject, 5)
        except Exception:  # a feature, not an answer: a broken index reads as "nothing close"
            return 0.0
        # The closest passage by meaning, wherever the fused ranking put it.
        return max((similarity(p) for p in found), default=0.0)

    def observe(self, step: TokenStep) -> Pause | None:
        self._confirm_sentence_end(step.text)
        content = is_content_piece(step.text)
        word = self._extend_word(step.text)
        grounded = any(known.startswith(word) for known in self.known_words) if word else True
        reason = None
        if content and not grounded:
            reason = self.check(step, self.sentence.features(step, self.position, bool(self.shown)))
        if reason is not None:
            query = self._query()
            if self._may_search(query):
                return Pause(reason=reason, query=query, keep_tokens=self.sentence_start, trigger_text=step.text)
        if ends_sentence(step.text) and self._ignores_evidence(step.text):
            # A whole sentence written after the evidence without a word of it (an echo of
            # the question, a made-up list): show the evidence again, question restated.
            self.retried = True
            return Pause(
                reason="the answer does not use the evidence",
                query=self.question,
                keep_tokens=0,
                trigger_text=step.text,
                retry=True,
            )
        self.partial = word
        self.pieces.append(step.text)
        self.sure.append(reason is None)
        self.position += 1
        self.sentence.update(step)
        if ends_sentence(step.text):
            self.end_pending = True
            if step.text[-1:].isspace():  # ".\n": the token shows the end itself
                self._confirm_sentence_end(step.text[-1])
        return None

    def _confirm_sentence_end(self, piece: str) -> None:
        """A sentence ends only once the next token shows it: "61." followed by "1%" goes on, so
        does "the U.S." followed by " Army"; whitespace and a new sentence's word end it."""
        if not self.end_pending:
            return
        if piece.strip() and not piece.strip(CLOSING):
            return  # a closing quote or bracket: the end is still to be shown
        self.end_pending = False
        written = "".join(self.pieces)
        next_word = re.match(r"\s*(\w*)", piece)
        if piece[:1].isspace() and not ends_in_abbreviation(written, next_word.group(1) if next_word else ""):
            self.sentence_start = len(self.pieces)
            self.sentence.reset()

    def gather(self, pause: Pause) -> Evidence:
        self.searches += 1
        if pause.retry:
            return Evidence(query=pause.query, passages=tuple(self.given), question=self.question, retry=True)
        self.asked.add(_normal(pause.query))
        try:
            found = self.tools.searcher.search(pause.query, self.config.passages_per_search)
        except Exception as exc:  # a failed search never ends the answer
            return Evidence(query=pause.query, error=f"search failed: {exc}", question=self.question)
        # Passages already in the context would only repeat themselves: a pause needs new ones.
        # Web results carry no similarity: the reader ranks their sentences instead.
        fresh = [
            p
            for p in found
            if (p.similarity is None or p.similarity >= self.config.min_passage_score) and _key(p) not in self.shown
        ]
        if self.tools.embed is not None:
            # Sentences are chosen for what is asked now: in a follow-up, the earlier question
            # found the passages, and its sentences would crowd out the answer.
            focus = pause.query.replace(self.subject, self.question.strip(), 1)
            kept = read(
                focus,
                fresh,
                self.tools.embed,
                self.tools.count_tokens,
                self.config.evidence_token_budget,
                self.config.reader_margin,
            )
        else:
            kept = self._within_budget(fresh)
        if not kept and self.given and not self.retried:
            # Nothing new, yet the model is making things up with the evidence in front of it:
            # show it once more, with the question restated right after it.
            self.retried = True
            return Evidence(query=pause.query, passages=tuple(self.given), question=self.question, retry=True)
        self.shown.update(_key(p) for p in kept)
        self.given.extend(kept)
        for passage in kept:
            self.known_words.update(words(passage.text))
            self.evidence_words.update(set(words(passage.text)) - set(words(self.subject)))
        return Evidence(query=pause.query, passages=tuple(kept), question=self.question)

    def resumed(self, kept_tokens: int) -> None:
        # The answer goes on in a new segment; the kept draft is no longer rewritable.
        self.pieces, self.sure, self.sentence_start, self.partial = [], [], 0, ""
        self.end_pending = False
        self.sentence.reset()

    # --- helpers ---------------------------------------------------------------------------
    def committed(self) -> int:
        """How many tokens of the current segment no pause can withdraw any more: those before
        the sentence being written, or none while a retry could still take the segment back."""
        return 0 if self._retry_open() and self._may_retry("".join(self.pieces)) else self.sentence_start

    def _retry_open(self) -> bool:
        return bool(self.given) and not self.retried and self.searches < self.config.max_searches

    def _may_retry(self, text: str) -> bool:
        """A retry is still possible: evidence was given, none of its words written yet."""
        return self._retry_open() and not (set(words(text)) & self.evidence_words)

    def _ignores_evidence(self, last_piece: str) -> bool:
        """True at a sentence end once two sentences (eight words at least) were written after
        the evidence without one of its own words. One sentence is not enough: the model often
        restates the question first and answers in the next."""
        text = "".join(self.pieces) + last_piece
        if not self._may_retry(text):
            return False
        sentences = sum(1 for start, end in sentence_spans(text) if len(words(text[start:end])) >= 2)
        return sentences >= 2 and len(words(text)) >= 8

    def _extend_word(self, piece: str) -> str:
        """The word this piece starts or continues, lowercased ("" for punctuation)."""
        if not piece[:1].isalnum():  # a space or punctuation starts a new word
            return "".join(ch for ch in piece.lower() if ch.isalnum())
        return self.partial + "".join(ch for ch in piece.lower() if ch.isalnum())

    def _may_search(self, query: str) -> bool:
        return self.searches < self.config.max_searches and _normal(query) not in self.asked

    def _query(self) -> str:
        """The subject plus the sure words of the sentence being written; unsure ones masked."""
        start = self.sentence_start
        draft = "".join(p for p, ok in zip(self.pieces[start:], self.sure[start:]) if ok)
        return " ".join(part for part in (self.subject, draft.strip()) if part)

    def _within_budget(self, passages: list[Passage]) -> list[Passage]:
        kept, used = [], 0
        for passage in passages:
            cost = self.tools.count_tokens(passage.text)
            if kept and used + cost > self.config.evidence_token_budget:
                break
            kept.append(passage)
            used += cost
        return kept


CLOSING = "\"')]”’"


def _key(passage: Passage) -> tuple[str, int]:
    return passage.source, passage.chunk_id


def _normal(query: str) -> str:
    return " ".join(query.lower().split())
