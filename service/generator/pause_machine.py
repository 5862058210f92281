"""One answer's pauses, whatever writes the tokens.

The local loop (KV rollback) and the remote loop (a new request per resume) produce tokens
differently but keep the same books: the segment since the last evidence, the text committed
before it, the token count, searches, sources and what to say about failed searches. They also
pause the same way: Pause, search, Evidence, then Resume or a note. `PauseMachine` does that
once; a `Resumer` is the part that differs, how the evidence goes in and the answer goes on.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from typing import Any, Generic, Protocol, TypeVar

from query_unit.protocol import Turn
from query_unit.types import Evidence, Pause, QuestionSignals, TokenStep
from retrieval.types import Passage
from service.generator.events import DoneEvent, Event, EvidenceEvent, NoticeEvent, PauseEvent, ResumeEvent, TokenEvent

T = TypeVar("T")  # one answer token as the loop holds it: a token id, or a remote token's text
T_contra = TypeVar("T_contra", contravariant=True)


class Resumer(Protocol[T_contra]):
    """What a loop does its own way around a pause."""

    def text(self, tokens: Sequence[T_contra]) -> str:
        """The text of some of the segment's tokens (a withdrawn or a kept draft)."""

    def admit(self, evidence: Evidence, kept: Sequence[T_contra], opening: bool) -> Evidence:
        """The evidence as it will go in after `kept`: the same, or an error where it cannot.
        `opening`: nothing of the answer would stand before it."""

    def resume(self, evidence: Evidence, kept: Sequence[T_contra]) -> int:
        """Put admitted evidence after the kept draft so that the answer goes on from there;
        returns the evidence's size in tokens, as the Resume event reports it."""


class PauseMachine(Generic[T]):
    """The books of one answer and its pause sequence; the loop feeds it tokens and pauses."""

    def __init__(self, turn: Turn | None, resumer: Resumer[T]) -> None:
        self.turn = turn
        self.resumer = resumer
        self.segment: list[T] = []  # answer tokens since the last evidence
        self.committed = ""  # answer text from before the last evidence
        self.completion_tokens = 0  # answer tokens that stand: withdrawn ones leave the count
        self.searches = 0
        self.sources: list[Passage] = []
        self.notes = SearchNotes()

    @property
    def empty(self) -> bool:
        """Nothing of the answer written yet (an answer is never left empty)."""
        return not self.committed and not self.segment

    def begin(self, question: QuestionSignals | None) -> Pause | None:
        """The turn's chance to search before the first token."""
        return self.turn.before_generation(question) if self.turn else None

    def observe(self, step: TokenStep) -> Pause | None:
        """The turn's look at a chosen token before it is kept."""
        return self.turn.observe(step) if self.turn else None

    def accept(self, token: T, text: str, step: TokenStep) -> TokenEvent:
        """Keep a token the turn let through; `text` is what the user sees of it."""
        self.segment.append(token)
        self.completion_tokens += 1
        final = self.turn.committed() if self.turn else len(self.segment)
        return TokenEvent(text=text, step=step, committed=final)

    def pause(self, pause: Pause) -> Generator[Event, None, bool]:
        """Search for a pause and, with evidence to read, resume after it; returns whether it
        resumed. Without evidence the draft stands as it is and the answer will say why."""
        assert self.turn is not None, "only a turn pauses"
        self.searches += 1
        withdrawn = self.resumer.text(self.segment[pause.keep_tokens :])
        yield PauseEvent(reason=pause.reason, query=pause.query, retracted=withdrawn, kept_tokens=pause.keep_tokens)
        found = self.turn.gather(pause)
        kept = self.segment[: pause.keep_tokens]
        evidence = self.resumer.admit(found, kept, opening=not self.committed and not kept)
        yield EvidenceEvent(query=evidence.query, passages=evidence.passages, error=evidence.error)
        if not evidence.ok:
            self.notes.record(evidence)
            return False
        size = self.resumer.resume(evidence, kept)
        self.committed = join_text(self.committed, self.resumer.text(kept))
        self.completion_tokens -= len(self.segment) - len(kept)
        self.sources.extend(p for p in evidence.passages if p not in self.sources)
        self.segment = []
        self.turn.resumed(len(kept))
        yield ResumeEvent(kept_tokens=len(kept), evidence_tokens=size)
        return True

    def close(self, segment_text: str, finish_reason: str, **usage: int) -> Iterator[Event]:
        """The closing notes and Done; `segment_text`: what the user saw of the last segment."""
        return closing_events(
            join_text(self.committed, segment_text),
            self.notes,
            finish_reason=finish_reason,
            completion_tokens=self.completion_tokens,
            searches=self.searches,
            sources=tuple(self.sources),
            **usage,
        )


class SearchNotes:
    """What the answer must say about its searches: each failure once, and, when every search
    found nothing, that it has no source behind it (an unsourced answer never passes for a
    sourced one)."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.unfound: list[str] = []  # queries that came back with nothing

    def record(self, evidence: Evidence) -> None:
        """A search that gave nothing to read: it failed, or found nothing."""
        if evidence.error is not None:
            notice = failure_notice(evidence.query, evidence.error)
            if notice not in self.failures:
                self.failures.append(notice)
        else:
            self.unfound.append(evidence.query)

    def notices(self, sourced: bool) -> list[str]:
        if self.unfound and not self.failures and not sourced:
            return [nothing_found_notice(self.unfound[0])]
        return self.failures


def closing_events(text: str, notes: SearchNotes, **done: Any) -> Iterator[Event]:
    """The service's own notes after the answer, then Done with all of it."""
    for notice in notes.notices(sourced=bool(done.get("sources"))):
        yield NoticeEvent(text="\n\n" + notice)
        text += "\n\n" + notice
    yield DoneEvent(text=text, **done)


# A notice quotes at most this many characters of its query. A client that sends a long
# prompt as its question (Open WebUI's title and tag tasks) would otherwise get the whole prompt,
# its example JSON included, echoed into the reply it parses.
NOTICE_QUERY_CHARS = 80


def quoted(query: str) -> str:
    """The query as a notice quotes it: whitespace folded, cut at a word near 80 characters."""
    words = " ".join(query.split())
    if len(words) <= NOTICE_QUERY_CHARS:
        return words
    return words[:NOTICE_QUERY_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def failure_notice(query: str, error: str) -> str:
    return f'(I could not look up "{quoted(query)}": {error}.)'


def nothing_found_notice(query: str) -> str:
    return f'(I looked up "{quoted(query)}" and found nothing, so this answer has no source behind it.)'


def join_text(before: str, after: str) -> str:
    """Answer text from before an evidence block joined to the text after it."""
    if not before:
        return after
    if not after or before[-1].isspace() or after[0].isspace():
        return before + after
    return before + " " + after
