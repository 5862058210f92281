"""Prometheus metrics at /metrics: what an operator watches to know the service is healthy.

Counters follow the answers' own events (tokens, pauses, searches and what they found), so
they count what the model did, not what the HTTP layer saw. Each app has its own registry:
two services in one process (the tests) never share counts.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from service.generator.events import DoneEvent, EvidenceEvent, PauseEvent, TokenEvent

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.answers = Counter(
            "ragpause_answers",
            "Chat answers by how they ended: stop, length, error or cancelled.",
            ["finish"],
            registry=r,
        )
        self.tokens = Counter(
            "ragpause_generated_tokens", "Answer tokens generated (withdrawn ones included).", registry=r
        )
        self.pauses = Counter("ragpause_pauses", "Pauses to look something up.", registry=r)
        self.searches = Counter("ragpause_searches", "Searches by outcome.", ["outcome"], registry=r)
        self.first_token = Histogram(
            "ragpause_first_token_seconds", "Time to an answer's first token.", buckets=_SECONDS, registry=r
        )
        self.answer_time = Histogram(
            "ragpause_answer_seconds", "Time to a complete answer.", buckets=_SECONDS, registry=r
        )
        self.generating = Gauge("ragpause_generating", "Answers holding a generation slot.", registry=r)
        self.queued = Gauge("ragpause_queued", "Answers waiting for a slot.", registry=r)
        self.ingestion_queued = Gauge("ragpause_ingestion_queued", "Ingestion jobs waiting.", registry=r)
        self.chunks = Gauge("ragpause_index_chunks", "Chunks in the local index.", registry=r)
        # Both 0 unless the index is re-embedding for a new embedder.
        self.reembed_done = Gauge("ragpause_reembed_done", "Chunks re-embedded for the new embedder.", registry=r)
        self.reembed_total = Gauge("ragpause_reembed_total", "Chunks to re-embed for the new embedder.", registry=r)

    async def observe(self, events: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """Pass an answer's events through, counting them."""
        start = time.perf_counter()
        first = True
        finish = "cancelled"  # unless a Done event arrives or it fails: the client left
        try:
            async for event in events:
                if isinstance(event, TokenEvent):
                    self.tokens.inc()
                    if first:
                        self.first_token.observe(time.perf_counter() - start)
                        first = False
                elif isinstance(event, PauseEvent):
                    self.pauses.inc()
                elif isinstance(event, EvidenceEvent):
                    outcome = "failed" if event.error else "found" if event.passages else "nothing"
                    self.searches.labels(outcome).inc()
                elif isinstance(event, DoneEvent):
                    finish = event.finish_reason
                    self.answer_time.observe(time.perf_counter() - start)
                yield event
        except Exception:
            finish = "error"
            raise
        finally:
            self.answers.labels(finish).inc()
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()  # a client that left frees its slot now, not at garbage collection

    def exposition(
        self,
        active: int,
        waiting: int,
        ingestion_waiting: int,
        chunks: Callable[[], int],
        reembedding: Callable[[], tuple[int, int] | None] = lambda: None,
    ) -> bytes:
        """The text format, with the gauges read now (`reembedding`: done and total, or None)."""
        self.generating.set(active)
        self.queued.set(waiting)
        self.ingestion_queued.set(ingestion_waiting)
        self.chunks.set(chunks())
        done, total = reembedding() or (0, 0)
        self.reembed_done.set(done)
        self.reembed_total.set(total)
        return generate_latest(self.registry)
