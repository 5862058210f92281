"""The generation thread: answers take turns, one event (about one token) each.

The model runs on one thread so that its matrix kernels have the cores to themselves, and the
event loop stays free for other requests and health checks. Each answer in progress holds a
generation slot (a model context with its own KV cache, weights shared); the thread steps
the slots round-robin, so a long answer slows the others down instead of blocking them.
Answers beyond the slots wait in a queue. A client that leaves frees its slot at once.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

_END = object()
Slot = TypeVar("Slot")


class Job:
    def __init__(self, make_events: Callable[[Any], Iterator[Any]], prompt: Sequence[int], loop: asyncio.AbstractEventLoop) -> None:
        self.make_events = make_events
        self.prompt = list(prompt)
        self.loop = loop
        self.out: asyncio.Queue = asyncio.Queue()
        self.cancelled = threading.Event()

    def emit(self, item: Any) -> None:
        self.loop.call_soon_threadsafe(self.out.put_nowait, item)


class _Running:
    def __init__(self, job: Job, slot: Any) -> None:
        self.job = job
        self.slot = slot
        self.events: Iterator[Any] | None = None


def _shared_prefix(cached: Sequence[int], prompt: Sequence[int]) -> int:
    n = 0
    for a, b in zip(cached, prompt):
        if a != b:
            break
        n += 1
    return n


class GenerationWorker(Generic[Slot]):
    def __init__(
        self,
        slots: Sequence[Slot],
        cached_tokens: Callable[[Slot], Sequence[int]] = lambda s: (),
        before_step: Callable[[Slot], None] = lambda s: None,
    ) -> None:
        """`before_step(slot)` runs before each step of an answer (e.g. to share the cores)."""
        if not slots:
            raise ValueError("at least one generation slot")
        self._before_step = before_step
        self._free: list[Slot] = list(slots)
        self._cached_tokens = cached_tokens
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._running: list[_Running] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="generation", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        return self._jobs.qsize()

    @property
    def active(self) -> int:
        return len(self._running)

    def _slot_for(self, job: Job) -> Slot:
        """The free slot whose cache already holds most of the prompt (a conversation's next
        turn lands where its earlier turns are cached)."""
        best = max(range(len(self._free)), key=lambda i: _shared_prefix(self._cached_tokens(self._free[i]), job.prompt))
        return self._free.pop(best)

    def _admit(self) -> None:
        while self._free and not self._stopping:
            try:
                job = self._jobs.get(block=not self._running)
            except queue.Empty:
                return
            if job is None:
                self._stopping = True
                return
            if job.cancelled.is_set():
                job.emit(_END)
                continue
            self._running.append(_Running(job, self._slot_for(job)))

    def _step(self, run: _Running) -> bool:
        """Advance one answer by one event; False when it is finished."""
        job = run.job
        try:
            if job.cancelled.is_set():
                if run.events is not None:
                    run.events.close()
                return False
            self._before_step(run.slot)
            if run.events is None:
                run.events = job.make_events(run.slot)
            job.emit(next(run.events))
            return True
        except StopIteration:
            return False
        except Exception as exc:  # handed to the request, which turns it into an error body
            job.emit(exc)
            return False

    def _run(self) -> None:
        while True:
            self._admit()
            if self._stopping and not self._running:
                return
            for run in list(self._running):
                if not self._step(run):
                    run.job.emit(_END)
                    self._running.remove(run)
                    self._free.append(run.slot)

    async def run(self, make_events: Callable[[Slot], Iterator[Any]], prompt: Sequence[int] = ()) -> AsyncIterator[Any]:
        """Queue a generation and yield its events as they come; exceptions are re-raised here."""
        job = Job(make_events, prompt, asyncio.get_running_loop())
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
