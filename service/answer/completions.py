"""Decode-loop events turned into OpenAI chat.completion objects and stream chunks.

Pauses travel as extra fields (`pause`, `evidence`, `resume`, `draft`) on otherwise ordinary
chunks, so clients that do not know them see a normal stream. `content` carries only text no
pause can take back (sentence by sentence once evidence is in play), with citations `[n]`
and a closing source list; `draft` carries every token as it is written, for clients that
draw the pauses.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from query_unit.types import TokenStep
from retrieval.chunking import sentence_spans
from retrieval.types import Passage
from service.answer.citations import Citer, mark, source_list
from service.api.responses import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChoiceLogprobs,
    ChunkChoice,
    Delta,
    EvidenceNotice,
    PauseNotice,
    PauseRecord,
    ResumeNotice,
    Source,
    TokenLogprob,
    TopLogprob,
    Usage,
)
from service.generator.backend import Backend
from service.generator.events import (
    DoneEvent,
    Event,
    EvidenceEvent,
    NoticeEvent,
    PauseEvent,
    ResumeEvent,
    TokenEvent,
)
from service.generator.pause_machine import join_text


def logprob_entry(backend: Backend, step: TokenStep, top: int) -> TokenLogprob:
    def entry(token_id: int, prob: float) -> TopLogprob:
        piece = backend.token_bytes(token_id)
        return TopLogprob(token=piece.decode("utf-8", errors="replace"), logprob=_log(prob), bytes=list(piece))

    if step.token_id < 0:  # from a remote server: the text is all there is
        return TokenLogprob(
            token=step.text, logprob=_log(step.prob), bytes=list(step.text.encode("utf-8")), top_logprobs=[]
        )
    chosen = entry(step.token_id, step.prob)
    return TokenLogprob(**chosen.model_dump(), top_logprobs=[entry(t, p) for t, p in step.top[:top]])


def _log(prob: float) -> float:
    return math.log(max(prob, 1e-45))


def usage_of(done: DoneEvent) -> Usage:
    return Usage(
        prompt_tokens=done.prompt_tokens,
        completion_tokens=done.completion_tokens,
        total_tokens=done.prompt_tokens + done.completion_tokens,
        evaluated_tokens=done.evaluated_tokens,
        cached_tokens=done.reused_tokens,
        searches=done.searches,
    )


class CompletionBuilder:
    """Follows one answer's events; builds chunks while streaming, or the whole object at the end."""

    def __init__(self, backend: Backend, model: str, logprobs: bool, top_logprobs: int, question: str = "") -> None:
        self.backend = backend
        self.model = model
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.logprobs = logprobs
        self.top_logprobs = top_logprobs
        self.pauses: list[PauseRecord] = []
        self.token_logprobs: list[TokenLogprob] = []
        self.done: DoneEvent | None = None
        self.citer = Citer(question)
        self.passages: list[Passage] = []  # every source shown, numbered from 1 in this order
        self.content = ""  # the final text as sent so far: citations included
        self.pending: list[str] = []  # visible text of each token of the current segment
        self.released = 0  # how many of them are in `content`
        self.segment_started = False  # the current segment has put text in `content`
        self.sent_role = False
        self.tail = ""  # text released when the answer ends
        self.held = ""  # released text of a sentence not yet known to be whole: cited once it is

    # --- final text: released when no pause can take it back ---------------------------
    def _release(self, upto: int, final: bool = False) -> str:
        """Move the segment's text up to token `upto` towards the content, citing its sentences.
        Once sources are in play a sentence is sent only when it is whole: when the text after
        it (the draft beyond `upto`) shows that it ended, or at `final`; so no marker ever
        lands inside "61.1%" or "U.S."."""
        text = "".join(self.pending[self.released : upto])
        self.released = max(self.released, upto)
        if text and not self.segment_started:  # joined to the text before the evidence as the loop joins it
            before = self.content + self.held
            text = join_text(before, text)[len(before) :]
        if text:
            self.segment_started = True
        if not self.citer.sources:
            self.content += text
            return text
        self.held += text
        lookahead = "" if final else "".join(self.pending[self.released :])
        spans = sentence_spans(self.held + lookahead)
        # A sentence is whole once another one starts after it; at `final` everything is.
        whole = [span for span, after in zip(spans, spans[1:]) if span[1] <= len(self.held) and after[0] > span[1]]
        if final and self.held:
            whole = [span for span in spans if span[0] < len(self.held)]
        if not whole:
            return ""
        upto_char = len(self.held) if final else whole[-1][1]
        pieces, last = [], 0
        for start, end in whole:
            pieces.append(self.held[last:start])
            pieces.append(mark(self.held[start:end], self.citer.cite(self.held[start:end])))
            last = end
        pieces.append(self.held[last:upto_char])
        self.held = self.held[upto_char:]
        released = "".join(pieces)
        self.content += released
        return released

    def _new_segment(self, kept: int) -> str:
        del self.pending[kept:]
        text = self._release(len(self.pending), final=True)
        self.pending, self.released, self.segment_started = [], 0, False
        return text

    def _delta(self, text: str) -> Delta:
        """The first delta names the role (with its content, even empty); later ones carry text."""
        if not self.sent_role:
            self.sent_role = True
            return Delta(role="assistant", content=text)
        return Delta(content=text or None)

    def _chunk(self, delta: Delta, finish: str | None = None, **extra: Any) -> ChatCompletionChunk:
        choice = ChunkChoice(delta=delta, finish_reason=finish)
        return ChatCompletionChunk(id=self.id, created=self.created, model=self.model, choices=[choice], **extra)

    def on_event(self, event: Event) -> ChatCompletionChunk | None:
        """Record the event; return the stream chunk it becomes (None: nothing to send yet)."""
        if isinstance(event, TokenEvent):
            self.pending.append(event.text)
            chunk = self._chunk(self._delta(self._release(event.committed)), draft=event.text)
            if self.logprobs:
                entry = logprob_entry(self.backend, event.step, self.top_logprobs)
                self.token_logprobs.append(entry)
                chunk.choices[0].logprobs = ChoiceLogprobs(content=[entry])
            return chunk
        if isinstance(event, NoticeEvent):
            text = self._release(len(self.pending), final=True) + event.text
            self.content += event.text
            return self._chunk(self._delta(text), draft=event.text)
        if isinstance(event, PauseEvent):
            pause = PauseNotice(reason=event.reason, query=event.query, retracted=event.retracted)
            self.pauses.append(PauseRecord(**pause.model_dump()))
            return self._chunk(self._delta(""), pause=pause)
        if isinstance(event, EvidenceEvent):
            for passage in event.passages:
                if passage not in self.passages:
                    self.passages.append(passage)
                    self.citer.add_source(passage.text)
            sources = [Source.of(p, self.passages.index(p) + 1) for p in event.passages]
            self.pauses[-1].sources, self.pauses[-1].error = sources, event.error
            evidence = EvidenceNotice(query=event.query, sources=sources, error=event.error)
            return self._chunk(self._delta(""), evidence=evidence)
        if isinstance(event, ResumeEvent):
            text = self._new_segment(event.kept_tokens)
            resume = ResumeNotice(kept_tokens=event.kept_tokens, evidence_tokens=event.evidence_tokens)
            return self._chunk(self._delta(text), resume=resume)
        if isinstance(event, DoneEvent):
            self.done = event
            self.tail = self._release(len(self.pending), final=True)
            listing = source_list(self.passages)
            self.tail += listing
            self.content += listing
            return None
        raise TypeError(f"unknown event {event!r}")

    def sources(self) -> list[Source]:
        return [Source.of(p, n) for n, p in enumerate(self.passages, start=1)]

    def final_chunks(self, include_usage: bool) -> list[ChatCompletionChunk]:
        assert self.done is not None
        chunks = []
        if self.tail:
            chunks.append(self._chunk(self._delta(self.tail)))
        chunks.append(self._chunk(Delta(), self.done.finish_reason, sources=self.sources(), answer=self.content))
        if include_usage:
            usage = usage_of(self.done)
            chunks.append(
                ChatCompletionChunk(id=self.id, created=self.created, model=self.model, choices=[], usage=usage)
            )
        return chunks

    def completion(self) -> ChatCompletion:
        assert self.done is not None
        logprobs = ChoiceLogprobs(content=self.token_logprobs) if self.logprobs else None
        message = AssistantMessage(content=self.content)
        return ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[Choice(message=message, finish_reason=self.done.finish_reason, logprobs=logprobs)],
            usage=usage_of(self.done),
            sources=self.sources(),
            pauses=self.pauses,
        )


async def collect(builder: CompletionBuilder, events: AsyncIterator[Event]) -> ChatCompletion:
    async for event in events:
        builder.on_event(event)
    return builder.completion()
