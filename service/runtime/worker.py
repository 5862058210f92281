"""The generation thread: answers take turns, one event (about one token) each.

The model runs on one thread so that its matrix kernels have the cores to themselves, and the
event loop stays free for other requests and health checks. Each answer in progress holds a
generation slot (a model context with its own KV cache, weights shared); the thread steps
the slots round-robin, so a long answer slows the others down instead of blocking them.
Answers beyond the slots wait in a queue. A client that leaves frees its slot at once.

A step that waits on the network instead of the cores (a search after a pause, every token
of a remote server's stream) runs on a helper thread, so that one answer's slow search never
holds up the others' tokens. Which steps wait is the caller's to say (`waits`).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

_END = object()
_FINISHED = object()
Slot = TypeVar("Slot")


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error


def _next_step(events: Iterator[Any]) -> Any:
    """The next event, _FINISHED, or the exception wrapped: safe to run on any thread."""
    try:
        return next(events)
    except StopIteration:
        return _FINISHED
    except Exception as exc:  # handed to the request, which turns it into an error body
        return _Failed(exc)


class Job:
    def __init__(
        self,
        make_events: Callable[[Any], Iterator[Any]],
        prompt: Sequence[int],
        loop: asyncio.AbstractEventLoop,
        waits: Callable[[Any], bool],
        detached: bool,
    ) -> None:
        self.make_events = make_events
        self.prompt = list(prompt)
        self.waits = waits
        self.detached = detached
        self.loop = loop
        self.out: asyncio.Queue = asyncio.Queue()
        self.cancelled = threading.Event()

    def emit(self, item: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.out.put_nowait, item)
        except RuntimeError:  # the requester's event loop is closed: nobody is listening
            self.cancelled.set()


class _Running:
    def __init__(self, job: Job, slot: Any) -> None:
        self.job = job
        self.slot = slot
        self.events: Iterator[Any] | None = None
        self.detach_next = job.detached  # the next step waits on I/O: run it on a helper thread
        self.pending: Future | None = None  # that step, while it runs


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
        self._wake = threading.Event()
        self._helpers = ThreadPoolExecutor(max_workers=len(slots), thread_name_prefix="generation-io")
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

    def _advance(self, run: _Running) -> bool | None:
        """Advance one answer: True if it moved, False when it is finished, None while its
        step is waiting on a helper thread."""
        job = run.job
        if run.pending is not None:
            if not run.pending.done():
                return None
            future, run.pending = run.pending, None
            return self._emit(run, future.result())
        if job.cancelled.is_set():
            if run.events is not None:
                run.events.close()
            return False
        if run.detach_next:
            run.pending = self._helpers.submit(self._step_on, run)
            run.pending.add_done_callback(lambda _: self._wake.set())
            return None
        self._before_step(run.slot)
        return self._emit(run, self._step_on(run))

    @staticmethod
    def _step_on(run: _Running) -> Any:
        """The answer's next event, _FINISHED or _Failed; the worker leaves the run alone
        meanwhile, so this may run on any thread."""
        if run.events is None:
            try:
                run.events = run.job.make_events(run.slot)
            except Exception as exc:
                return _Failed(exc)
        return _next_step(run.events)

    def _emit(self, run: _Running, outcome: Any) -> bool:
        if outcome is _FINISHED:
            return False
        if isinstance(outcome, _Failed):
            run.job.emit(outcome.error)
            return False
        run.job.emit(outcome)
        run.detach_next = run.job.detached or run.job.waits(outcome)
        return True

    def _run(self) -> None:
        while True:
            self._wake.clear()  # set by a helper's step finishing or a new job
            self._admit()
            if self._stopping and not self._running:
                self._helpers.shutdown(wait=False)
                return
            moved = False
            for run in list(self._running):
                try:
                    outcome = self._advance(run)
                except Exception as exc:  # e.g. before_step failed: this answer ends, the thread goes on
                    run.job.emit(exc)
                    outcome = False
                if outcome is False:
                    run.job.emit(_END)
                    self._running.remove(run)
                    self._free.append(run.slot)
                moved = moved or outcome is not None
            if self._running and not moved:
                self._wake.wait(timeout=1.0)  # every answer is waiting on its helper

    async def run(
        self,
        make_events: Callable[[Slot], Iterator[Any]],
        prompt: Sequence[int] = (),
        waits: Callable[[Any], bool] = lambda event: False,
        detached: bool = False,
    ) -> AsyncIterator[Any]:
        """Queue a generation and yield its events as they come; exceptions are re-raised here.
        `waits(event)`: whether the step after this event waits on I/O rather than the model;
        `detached`: every step does (an answer streamed from a remote server)."""
        job = Job(make_events, prompt, asyncio.get_running_loop(), waits, detached)
        self._jobs.put(job)
        self._wake.set()
        try:
            while (item := await job.out.get()) is not _END:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            job.cancelled.set()

    def stop(self) -> None:
        self._jobs.put(None)
        self._wake.set()
        self._thread.join(timeout=5)
