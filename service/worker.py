"""One generation thread with a queue: the model serves one answer at a time, the event loop
stays free for other requests and health checks, and a client that leaves frees the model."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

_END = object()


class Job:
    def __init__(self, make_events: Callable[[], Iterator[Any]], loop: asyncio.AbstractEventLoop) -> None:
        self.make_events = make_events
        self.loop = loop
        self.out: asyncio.Queue = asyncio.Queue()
        self.cancelled = threading.Event()

    def emit(self, item: Any) -> None:
        self.loop.call_soon_threadsafe(self.out.put_nowait, item)


class GenerationWorker:
    def __init__(self) -> None:
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="generation", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        return self._jobs.qsize()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job.cancelled.is_set():
                continue
            try:
                events = job.make_events()
                for event in events:
                    if job.cancelled.is_set():
                        events.close()
                        break
                    job.emit(event)
            except Exception as exc:  # handed to the request, which turns it into an error body
                job.emit(exc)
            job.emit(_END)

    async def run(self, make_events: Callable[[], Iterator[Any]]) -> AsyncIterator[Any]:
        """Queue a generation and yield its events as they come; exceptions are re-raised here."""
        job = Job(make_events, asyncio.get_running_loop())
        self._jobs.put(job)
        try:
            while (item := await job.out.get()) is not _END:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            job.cancelled.set()

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5)
