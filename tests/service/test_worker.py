"""The generation worker: answers take turns on the slots, wait in a queue beyond them, and a
step that waits on the network (a search) runs aside so that the other answers go on.

The first tests drive the worker with plain generators, whose sleeps stand for a model step
and a search; the last one runs two real chats over HTTP against a slow search endpoint."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from retrieval.document_index import DocumentIndex
from service.api.app import create_app
from service.generator.llama_backend import LlamaCppBackend
from service.generator.model_files import default_gguf_path
from service.runtime.runtime import Runtime, web_searcher
from service.runtime.worker import GenerationWorker
from service.settings import Settings
from tests.known_fact import SYSTEM_PROMPT
from tests.live_server import serve
from tests.search_server import SearchServer


def collect(
    worker: GenerationWorker, jobs: dict[str, Callable[[str], Iterator[object]]], **options
) -> dict[str, list[tuple[float, object]]]:
    """Run the jobs at once; each event with the time it arrived."""

    async def one(make) -> list[tuple[float, object]]:  # type: ignore[no-untyped-def]
        return [(time.perf_counter(), event) async for event in worker.run(make, **options)]

    async def every() -> list[list[tuple[float, object]]]:
        return await asyncio.gather(*(one(make) for make in jobs.values()))

    return dict(zip(jobs, asyncio.run(every())))


def tokens(n: int, seconds: float = 0.005) -> Callable[[str], Iterator[object]]:
    def make(slot: str) -> Iterator[object]:
        for i in range(n):
            time.sleep(seconds)  # a model step
            yield (slot, i)

    return make


def searching(wait_s: float) -> Callable[[str], Iterator[object]]:
    def make(slot: str) -> Iterator[object]:
        yield "pause"
        time.sleep(wait_s)  # a search on a slow endpoint
        yield "evidence"
        yield "done"

    return make


def test_answers_take_turns_on_their_slots() -> None:
    worker = GenerationWorker(["a", "b"])
    try:
        out = collect(worker, {"one": tokens(20), "two": tokens(20)})
    finally:
        worker.stop()
    assert [e for _, e in out["one"]] == [(out["one"][0][1][0], i) for i in range(20)]
    assert {out["one"][0][1][0], out["two"][0][1][0]} == {"a", "b"}, "each answer on its own slot"
    # Round-robin: the second answer is under way long before the first one ends.
    assert out["two"][0][0] < out["one"][-1][0] and out["one"][0][0] < out["two"][-1][0]


def test_answers_beyond_the_slots_wait_and_then_run() -> None:
    worker = GenerationWorker(["only"])
    try:
        out = collect(worker, {"first": tokens(10), "second": tokens(10)})
    finally:
        worker.stop()
    assert len(out["first"]) == len(out["second"]) == 10
    earlier, later = sorted(out.values(), key=lambda events: events[0][0])
    assert later[0][0] >= earlier[-1][0], "one slot: the second answer starts after the first ends"


@pytest.mark.parametrize(
    "hint", [{"waits": lambda event: event == "pause"}, {"detached": True}], ids=["waits", "detached"]
)
def test_a_search_does_not_hold_up_the_other_answers(hint) -> None:
    """`waits`: the step after a pause runs aside; `detached` (a remote answer): every step does."""
    worker = GenerationWorker(["a", "b"])
    try:
        out = collect(worker, {"searching": searching(1.0), "talking": tokens(40)}, **hint)
    finally:
        worker.stop()
    evidence_at = next(t for t, e in out["searching"] if e == "evidence")
    assert out["talking"][-1][0] < evidence_at, "the other answer finished while the search ran"
    assert [e for _, e in out["searching"]] == ["pause", "evidence", "done"]


def test_without_the_hint_a_search_blocks_everyone() -> None:
    """The control for the test above: the same jobs, the search on the generation thread."""
    worker = GenerationWorker(["a", "b"])
    try:
        out = collect(worker, {"searching": searching(1.0), "talking": tokens(40)})
    finally:
        worker.stop()
    evidence_at = next(t for t, e in out["searching"] if e == "evidence")
    assert out["talking"][-1][0] > evidence_at


def test_failures_reach_the_request_on_either_thread() -> None:
    def failing_after_pause(slot: str) -> Iterator[object]:
        yield "pause"
        raise RuntimeError("the search crashed")

    def failing_to_start(slot: str) -> Iterator[object]:
        raise RuntimeError("no such model")

    worker = GenerationWorker(["a", "b"])

    async def outcome(make, **options) -> str:  # type: ignore[no-untyped-def]
        try:
            async for _ in worker.run(make, **options):
                pass
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    async def every() -> list[str]:
        return await asyncio.gather(
            outcome(failing_after_pause, waits=lambda e: e == "pause"),
            outcome(failing_to_start, detached=True),
            outcome(tokens(3)),
        )

    try:
        assert asyncio.run(every()) == ["the search crashed", "no such model", "no error"]
        assert asyncio.run(outcome(tokens(2))) == "no error", "the slots were given back"
    finally:
        worker.stop()


def test_a_failing_hook_ends_one_answer_not_the_thread() -> None:
    calls = []

    def before_step(slot: str) -> None:
        calls.append(slot)
        if len(calls) == 1:
            raise RuntimeError("could not set the thread count")

    worker = GenerationWorker(["only"], before_step=before_step)

    async def outcome() -> str:
        try:
            return str(len([e async for e in worker.run(tokens(3))]))
        except RuntimeError as exc:
            return str(exc)

    try:
        assert asyncio.run(outcome()) == "could not set the thread count"
        assert asyncio.run(outcome()) == "3", "the generation thread lived on"
    finally:
        worker.stop()


def test_a_client_that_leaves_frees_its_slot() -> None:
    worker = GenerationWorker(["only"])
    stopped = threading.Event()

    def endless(slot: str) -> Iterator[object]:
        try:
            while True:
                time.sleep(0.005)
                yield "token"
        finally:
            stopped.set()

    async def leave_early() -> None:
        async for _ in worker.run(endless):
            break

    async def after() -> int:
        return len([e async for e in worker.run(tokens(3))])

    try:
        asyncio.run(leave_early())
        assert asyncio.run(asyncio.wait_for(after(), 10)) == 3
        assert stopped.wait(5), "the abandoned answer's generator was closed"
    finally:
        worker.stop()


@pytest.fixture()
def slow_web():
    server = SearchServer(
        [
            {
                "title": "Zorblax Quintaro",
                "url": "https://example.org/zorblax",
                "content": "Zorblax Quintaro was born in Vellmora.",
            }
        ],
        slow_s=2.5,
    )
    server.mode = "slow"
    yield server
    server.close()


def test_a_real_chat_streams_on_while_another_waits_for_a_slow_search(slow_web, embedder, tmp_path) -> None:
    settings = Settings(
        system_prompt=SYSTEM_PROMPT,
        web_search_url=slow_web.url,
        web_timeout_s=10,
        web_retries=0,
        generation_slots=2,
    )
    slots = [LlamaCppBackend(default_gguf_path(), n_ctx=2048) for _ in range(2)]
    engine = Runtime(settings, slots[0], DocumentIndex(tmp_path, embedder), web_searcher(settings), slots[1:])
    finished: dict[str, float] = {}

    def chat(url: str, name: str, body: dict) -> None:
        response = httpx.post(url + "/v1/chat/completions", json={"max_tokens": 40, **body}, timeout=120)
        assert response.status_code == 200, response.text
        finished[name] = time.perf_counter()

    with serve(create_app(settings, runtime=engine)) as url:
        searching = threading.Thread(
            target=chat,
            args=(
                url,
                "searching",
                {
                    "messages": [{"role": "user", "content": "Where was Zorblax Quintaro born?"}],
                    "retrieval": "always",
                    "sources": "web",
                },
            ),
        )
        start = time.perf_counter()
        searching.start()
        while not slow_web.requests and time.perf_counter() - start < 30:
            time.sleep(0.02)
        assert slow_web.requests, "the first chat is searching"
        asked = time.perf_counter()
        chat(
            url,
            "plain",
            {"messages": [{"role": "user", "content": "What is the capital of France?"}], "retrieval": "off"},
        )
        searching.join(120)
    # Ordering, not speed: the plain answer was complete before the search endpoint answered.
    assert finished["plain"] < asked + slow_web.slow_s < finished["searching"]
