"""The decode loop: one token at a time, with the pause as an ordinary branch.

On a pause the KV cache is rolled back to the start of the uncertain sentence, an evidence
block is appended, and decoding resumes from there. Tokens before the rollback point stay
in the cache and are never evaluated again.
"""

from __future__ import annotations

import codecs
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any
from dataclasses import dataclass, field, replace

from query_unit.protocol import TurnMonitor
from query_unit.types import Evidence, Pause, QuestionSignals
from retrieval.types import Passage
from service.generator.backend import Backend
from service.generator.chat_template import ChatTemplate
from service.generator.events import (
    DoneEvent,
    Event,
    EvidenceEvent,
    NoticeEvent,
    PauseEvent,
    ResumeEvent,
    TokenEvent,
)
from service.generator.evidence_block import DEFAULT_STYLE, EvidenceStyle, evidence_block
from service.generator.sampling import Sampler, SamplingParams


@dataclass(frozen=True, slots=True)
class GenerationParams:
    max_tokens: int = 256
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stop: tuple[str, ...] = ()
    evidence_style: EvidenceStyle = DEFAULT_STYLE


# Evidence goes in only if the answer still has this many tokens of room after it.
ROOM_AFTER_EVIDENCE = 16

def generate(
    backend: Backend,
    template: ChatTemplate,
    prompt: Sequence[int],
    monitor: TurnMonitor | None = None,
    params: GenerationParams = GenerationParams(),
    question_span: tuple[int, int] | None = None,
) -> Iterator[Event]:
    """Answer the prompt, pausing whenever the monitor asks to look something up.

    `question_span` marks the question's tokens in the prompt: the model's surprise at them
    is handed to the monitor before the first token.
    """
    evaluated_before = backend.n_evaluated
    scored = monitor is not None and question_span is not None
    loaded = backend.load_prompt(list(prompt), score_from=question_span[0] if scored else None)
    reused = loaded.reused
    sampler = Sampler(params.sampling)
    stops = _StopMatcher(params.stop)

    segment_start = len(backend.tokens)  # where the current stretch of answer begins in the cache
    header = template.assistant_start()
    # Where the assistant header before the answer starts: evidence found before the first
    # answer token goes there, right after the question (nothing before it is recomputed).
    opens_answer = segment_start >= len(header) and backend.tokens[segment_start - len(header) : segment_start] == header
    header_at = segment_start - len(header) if opens_answer else None
    segment: list[int] = []  # answer tokens since the last evidence block
    committed = ""  # answer text from before the last evidence block
    completion_tokens = searches = 0
    sources: list[Passage] = []
    notes = SearchNotes()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    finish = "length"
    # The answer's tokens so far, for frequency and presence penalties: withdrawn ones leave it.
    counts: Counter[int] | None = Counter() if params.sampling.penalizes else None

    question = question_signals(backend, prompt, question_span, loaded.scores) if scored else None
    pause: Pause | None = monitor.before_generation(question) if monitor else None
    while True:
        if pause is not None:
            searches += 1
            retracted = _decode(backend, segment[pause.keep_tokens :])
            if counts is not None:
                counts.subtract(segment[pause.keep_tokens :])
            yield PauseEvent(reason=pause.reason, query=pause.query, retracted=retracted, kept_tokens=pause.keep_tokens)
            evidence = monitor.gather(pause)
            kept = segment[: pause.keep_tokens]
            after_question = header_at is not None and not committed and not kept and segment_start == header_at + len(header)
            at = header_at if after_question else segment_start + len(kept)
            block = (
                evidence_block(template, evidence, draft_kept=bool(kept), style=params.evidence_style, after_question=after_question)
                if evidence.ok
                else []
            )
            if block and at + len(block) + ROOM_AFTER_EVIDENCE > backend.n_ctx:
                # What it found does not fit in the context: go on without it, and say so.
                evidence = replace(evidence, passages=(), error="no room left in the context window for what it found")
            yield EvidenceEvent(query=evidence.query, passages=evidence.passages, error=evidence.error)
            if evidence.ok:
                backend.rollback(at)
                backend.append(block)
                committed = join_text(committed, _decode(backend, kept))
                completion_tokens -= len(segment) - len(kept)
                sources.extend(p for p in evidence.passages if p not in sources)
                segment, segment_start = [], len(backend.tokens)
                header_at = segment_start - len(header)
                decoder.reset()
                stops.reset()
                monitor.resumed(len(kept))
                yield ResumeEvent(kept_tokens=len(kept), evidence_tokens=len(block))
            else:
                # A failed or empty search: carry on with the draft as it stands; the answer says so.
                notes.record(evidence)
            # With nothing new to read, the draft simply goes on.
            pause = None

        if completion_tokens >= params.max_tokens or len(backend.tokens) >= backend.n_ctx:
            break  # "length": the answer's budget or the context window is used up
        # An answer is never empty: right after an evidence block the model may try to stop.
        empty = not committed and not segment
        step = backend.step(sampler, banned=backend.eos_token_ids if empty else frozenset(), counts=counts)
        if step.token_id in backend.eos_token_ids:
            finish = "stop"
            break
        pause = monitor.observe(step) if monitor else None
        if pause is not None:
            continue  # the token is withdrawn with the rest of its sentence

        segment.append(step.token_id)
        completion_tokens += 1
        if counts is not None:
            counts[step.token_id] += 1
        visible, hit = stops.feed(decoder.decode(backend.token_bytes(step.token_id)))
        final = monitor.committed() if monitor else len(segment)
        yield TokenEvent(text=visible, step=step, committed=final)  # shown before it is evaluated, as llama.cpp does
        if hit:
            finish = "stop"
            break
        backend.append([step.token_id])

    tail = stops.flush()
    if tail:
        yield NoticeEvent(text=tail)
    yield from closing_events(
        join_text(committed, stops.segment_text()),
        notes,
        finish_reason=finish,
        prompt_tokens=len(prompt),
        completion_tokens=completion_tokens,
        evaluated_tokens=backend.n_evaluated - evaluated_before,
        reused_tokens=reused,
        searches=searches,
        sources=tuple(sources),
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


def failure_notice(query: str, error: str) -> str:
    return f'(I could not look up "{query}": {error}.)'


def nothing_found_notice(query: str) -> str:
    return f'(I looked up "{query}" and found nothing, so this answer has no source behind it.)'


def question_signals(
    backend: Backend, prompt: Sequence[int], span: tuple[int, int], scores: Sequence[float]
) -> QuestionSignals:
    """The question's tokens with their log-probabilities (scored from span[0] on) and the
    hidden state at the end of the prompt, as the query unit's gate reads them."""
    start, end = span
    return QuestionSignals(
        pieces=tuple(backend.piece(t) for t in prompt[start:end]),
        logprobs=tuple(scores[: end - start]),
        hidden=backend.hidden(),
    )


def _decode(backend: Backend, tokens: Sequence[int]) -> str:
    return b"".join(backend.token_bytes(t) for t in tokens).decode("utf-8", errors="replace")


def join_text(before: str, after: str) -> str:
    """Answer text from before an evidence block joined to the text after it."""
    if not before:
        return after
    if not after or before[-1].isspace() or after[0].isspace():
        return before + after
    return before + " " + after


class _StopMatcher:
    """Holds back text that could be the start of a stop string, and cuts at a full match."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.reset()

    def reset(self) -> None:
        self._shown = ""  # segment text already released
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        pending = self._held + text
        for stop in self.stops:
            at = pending.find(stop)
            if at >= 0:
                self._held = ""
                self._shown += pending[:at]
                return pending[:at], True
        keep = max((_overlap(pending, s) for s in self.stops), default=0)
        release, self._held = pending[: len(pending) - keep], pending[len(pending) - keep :]
        self._shown += release
        return release, False

    def flush(self) -> str:
        held, self._held = self._held, ""
        self._shown += held
        return held

    def segment_text(self) -> str:
        return self._shown


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of `text` that begins `stop`."""
    for n in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-n:]):
            return n
    return 0
