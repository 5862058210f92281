"""Streams that run into trouble midway: evidence with no room left in the context, and an
engine that fails after a few tokens. The first still completes; the second ends with an
error event, and the service goes on serving."""

from __future__ import annotations

import json

import httpx
import pytest

from service.api.app import create_app
from service.generator.llama_backend import LlamaCppBackend
from service.generator.model_files import default_gguf_path
from service.runtime.runtime import Runtime
from service.settings import Settings
from tests.known_fact import ANSWER, QUESTION, SYSTEM_PROMPT, assert_decisive
from tests.live_server import serve, serve_engine


class EngineFault(RuntimeError):
    pass


class FailingAfter(LlamaCppBackend):
    """The real engine, made to fail on its fifth token of an answer: a fault injection (a
    crashed kernel, an exhausted device) that cannot be caused on purpose otherwise."""

    armed = False

    def step(self, sampler, banned=frozenset(), counts=None):  # type: ignore[no-untyped-def]
        self.steps = getattr(self, "steps", 0) + 1
        if self.armed and self.steps % 5 == 0:
            raise EngineFault("the engine stopped responding")
        return super().step(sampler, banned, counts)


def sse(url: str, body: dict) -> list:
    events = []
    with httpx.stream("POST", url + "/v1/chat/completions", json={**body, "stream": True}, timeout=120) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:] if line == "data: [DONE]" else json.loads(line[6:]))
    return events


@pytest.fixture(scope="module")
def server(starter_index):
    backend = FailingAfter(default_gguf_path(), n_ctx=1024)
    with serve_engine(backend, starter_index, n_ctx=1024) as url:
        yield url, backend


def test_evidence_without_room_is_skipped_and_said(server) -> None:
    url, backend = server
    backend.armed = False
    filler = "The weather was calm and the sea was grey. " * 92  # leaves ~50 tokens of context
    messages = [
        {"role": "user", "content": filler},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "Where was Zorblax Quintaro born?"},
    ]
    events = sse(url, {"messages": messages, "max_tokens": 30})
    chunks = [e for e in events if isinstance(e, dict)]
    assert events[-1] == "[DONE]" and not any("error" in c for c in chunks)
    evidence = [c["evidence"] for c in chunks if "evidence" in c]
    assert evidence and "no room left in the context" in evidence[0]["error"]
    final = next(c for c in chunks if c.get("answer") is not None)
    assert "could not look up" in final["answer"]


def test_an_engine_fault_midway_ends_the_stream_with_an_error_event(server, llama_backend) -> None:
    assert_decisive(llama_backend, SYSTEM_PROMPT)  # the same model and build as the failing engine's
    url, backend = server
    backend.armed, backend.steps = True, 0
    events = sse(
        url, {"messages": [{"role": "user", "content": "Tell me about the sea."}], "max_tokens": 40, "retrieval": "off"}
    )
    assert events[-1] == "[DONE]"
    drafts = [e for e in events if isinstance(e, dict) and e.get("draft")]
    error = events[-2]["error"]
    assert len(drafts) == 4 and error["type"] == "server_error" and "stopped responding" in error["message"]
    backend.armed = False
    assert httpx.get(url + "/health").json()["status"] == "ok"
    again = httpx.post(
        url + "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": QUESTION}], "max_tokens": 20},
        timeout=60,
    )
    assert again.status_code == 200 and ANSWER in again.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("mode", ["down", "slow", "error500", "garbage"])
def test_every_turn_completes_whatever_the_search_endpoint_does(llama_backend, starter_index, mode) -> None:
    from service.runtime.runtime import web_searcher
    from tests.live_server import free_port
    from tests.search_server import SearchServer

    web = SearchServer([], slow_s=3.0)
    web.mode = "ok" if mode == "down" else mode
    url = f"http://127.0.0.1:{free_port()}" if mode == "down" else web.url  # nothing listens there
    settings = Settings(system_prompt=SYSTEM_PROMPT, web_search_url=url, web_timeout_s=1.0, web_retries=1)
    try:
        engine = Runtime(settings, llama_backend, starter_index, web_searcher(settings))
        with serve(create_app(settings, runtime=engine)) as base:
            for stream in (False, True):
                body = {
                    "messages": [{"role": "user", "content": "Who won the regatta at Port Vessik?"}],
                    "max_tokens": 30,
                    "sources": "web",
                    "retrieval": "always",
                }
                if stream:
                    events = sse(base, body)
                    assert events[-1] == "[DONE]" and not any(isinstance(e, dict) and "error" in e for e in events)
                    answer = next(e["answer"] for e in events if isinstance(e, dict) and e.get("answer") is not None)
                else:
                    reply = httpx.post(base + "/v1/chat/completions", json=body, timeout=60)
                    assert reply.status_code == 200
                    answer = reply.json()["choices"][0]["message"]["content"]
                assert "could not look up" in answer, answer
                assert len(answer.split("(I could not look up")[0].split()) >= 3  # it answered anyway
    finally:
        web.close()
