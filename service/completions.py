"""Decode-loop events turned into OpenAI chat.completion objects and stream chunks.

Pauses travel as extra fields (`pause`, `evidence`, `resume`) on otherwise ordinary chunks,
so clients that do not know them see a normal stream.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from query_unit.types import TokenStep
from retrieval.types import Passage
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


def source_json(passage: Passage, number: int) -> dict[str, Any]:
    return {"id": number, "title": passage.title, "source": passage.source, "score": round(passage.score, 4), "text": passage.text}


def logprob_json(backend: Backend, step: TokenStep, top: int) -> dict[str, Any]:
    def entry(token_id: int, prob: float) -> dict[str, Any]:
        piece = backend.token_bytes(token_id)
        return {"token": piece.decode("utf-8", errors="replace"), "logprob": math.log(max(prob, 1e-45)), "bytes": list(piece)}

    return {**entry(step.token_id, step.prob), "top_logprobs": [entry(t, p) for t, p in step.top[:top]]}


def usage_json(done: DoneEvent) -> dict[str, Any]:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
        "evaluated_tokens": done.evaluated_tokens,
        "cached_tokens": done.reused_tokens,
        "searches": done.searches,
    }


class CompletionBuilder:
    """Follows one answer's events; builds chunks while streaming, or the whole object at the end."""

    def __init__(self, backend: Backend, model: str, logprobs: bool, top_logprobs: int) -> None:
        self.backend = backend
        self.model = model
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.logprobs = logprobs
        self.top_logprobs = top_logprobs
        self.pauses: list[dict[str, Any]] = []
        self.token_logprobs: list[dict[str, Any]] = []
        self.done: DoneEvent | None = None

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **extra,
        }

    def on_event(self, event: Event) -> dict[str, Any] | None:
        """Record the event; return the stream chunk it becomes (None: nothing to send yet)."""
        if isinstance(event, TokenEvent):
            chunk = self._chunk({"content": event.text})
            if self.logprobs:
                entry = logprob_json(self.backend, event.step, self.top_logprobs)
                self.token_logprobs.append(entry)
                chunk["choices"][0]["logprobs"] = {"content": [entry]}
            return chunk
        if isinstance(event, NoticeEvent):
            return self._chunk({"content": event.text})
        if isinstance(event, PauseEvent):
            pause = {"reason": event.reason, "query": event.query, "retracted": event.retracted}
            self.pauses.append(pause)
            return self._chunk({}, pause=pause)
        if isinstance(event, EvidenceEvent):
            sources = [source_json(p, n) for n, p in enumerate(event.passages, start=1)]
            self.pauses[-1].update(sources=sources, error=event.error)
            return self._chunk({}, evidence={"query": event.query, "sources": sources, "error": event.error})
        if isinstance(event, ResumeEvent):
            return self._chunk({}, resume={"kept_tokens": event.kept_tokens, "evidence_tokens": event.evidence_tokens})
        if isinstance(event, DoneEvent):
            self.done = event
            return None
        raise TypeError(f"unknown event {event!r}")

    def sources(self) -> list[dict[str, Any]]:
        assert self.done is not None
        return [source_json(p, n) for n, p in enumerate(self.done.sources, start=1)]

    def final_chunks(self, include_usage: bool) -> list[dict[str, Any]]:
        assert self.done is not None
        chunks = [self._chunk({}, self.done.finish_reason, sources=self.sources(), answer=self.done.text)]
        if include_usage:
            usage_chunk = self._chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = usage_json(self.done)
            chunks.append(usage_chunk)
        return chunks

    def completion(self) -> dict[str, Any]:
        assert self.done is not None
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.done.text},
                    "finish_reason": self.done.finish_reason,
                    "logprobs": {"content": self.token_logprobs} if self.logprobs else None,
                }
            ],
            "usage": usage_json(self.done),
            "sources": self.sources(),
            "pauses": self.pauses,
        }


async def collect(builder: CompletionBuilder, events: AsyncIterator[Event]) -> dict[str, Any]:
    async for event in events:
        builder.on_event(event)
    return builder.completion()
