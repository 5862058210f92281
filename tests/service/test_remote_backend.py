"""Generation on a remote OpenAI-compatible server: llama-cpp-python's own server, run as a
real process on loopback, streaming token logprobs that the query unit reads."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from retrieval.document_index import DocumentIndex
from service.api.app import create_app
from service.generator.chat_template import ChatMessage
from service.generator.decode_loop import GenerationParams
from service.generator.events import DoneEvent, PauseEvent, TokenEvent
from service.generator.model_files import default_gguf_path
from service.generator.remote import RemoteError, RemoteGenerator, defang
from service.generator.sampling import SamplingParams
from service.runtime.runtime import Runtime
from service.settings import Settings
from tests.known_fact import ANSWER, QUESTION, SYSTEM_PROMPT, assert_decisive
from tests.live_server import free_port, serve


@pytest.fixture(scope="module")
def remote_url():
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(default_gguf_path()),
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--logits_all",
            "true",
            "--n_threads",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert server.poll() is None and time.time() < deadline, "llama-cpp-python's server did not start"
        time.sleep(0.3)
    yield url
    server.terminate()
    server.wait(timeout=20)


@pytest.fixture(scope="module")
def engine(remote_url, llama_backend, starter_index) -> Runtime:
    settings = Settings(system_prompt=SYSTEM_PROMPT)
    return Runtime(settings, llama_backend, starter_index, remote=RemoteGenerator(remote_url, "smollm2"))


def test_known_fact_streams_with_the_servers_logprobs_and_no_search(engine, llama_backend) -> None:
    assert_decisive(llama_backend, SYSTEM_PROMPT)  # the server runs the same model and build
    events = list(engine.chat([ChatMessage("user", QUESTION)], GenerationParams(max_tokens=30)))
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert tokens and all(0 < e.step.prob <= 1 and math.isfinite(e.step.entropy) for e in tokens)
    assert any(e.step.prob < 0.999 for e in tokens)  # real probabilities, not placeholders
    assert not any(isinstance(e, PauseEvent) for e in events)
    assert ANSWER in events[-1].text


def test_invented_entity_pauses_and_the_remote_answer_uses_the_evidence(engine) -> None:
    events = list(
        engine.chat([ChatMessage("user", "Where was Zorblax Quintaro born?")], GenerationParams(max_tokens=60))
    )
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.searches >= 1
    assert "Vellmora" in done.text and "zorblax" in done.sources[0].source


def test_a_remote_answer_whose_search_found_nothing_says_so(remote_url, llama_backend, embedder, tmp_path) -> None:
    settings = Settings(system_prompt=SYSTEM_PROMPT)
    engine = Runtime(
        settings, llama_backend, DocumentIndex(tmp_path, embedder), remote=RemoteGenerator(remote_url, "smollm2")
    )
    events = list(
        engine.chat([ChatMessage("user", "Where was Zorblax Quintaro born?")], GenerationParams(max_tokens=40))
    )
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.searches >= 1 and not done.sources
    assert done.text.endswith("and found nothing, so this answer has no source behind it.)")


def test_the_api_serves_a_remote_engine_and_reports_its_failure(remote_url, llama_backend, starter_index) -> None:
    settings = Settings(system_prompt=SYSTEM_PROMPT)
    engine = Runtime(settings, llama_backend, starter_index, remote=RemoteGenerator(remote_url, "smollm2"))
    with serve(create_app(settings, runtime=engine)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120)
        reply = client.chat.completions.create(
            model="x", messages=[{"role": "user", "content": "Where was Zorblax Quintaro born?"}], max_tokens=60
        )
        assert "Vellmora [1]" in reply.choices[0].message.content and reply.model_extra["pauses"]
    down = Runtime(
        settings,
        llama_backend,
        starter_index,
        remote=RemoteGenerator(f"http://127.0.0.1:{free_port()}", "x", timeout_s=2),
    )
    with serve(create_app(settings, runtime=down)) as url:
        response = httpx.post(
            url + "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "Hi"}], "retrieval": "off"},
            timeout=30,
        )
        assert response.status_code == 502 and response.json()["error"]["code"] == "generator_unavailable"


def test_penalties_reach_the_remote_server(engine) -> None:
    def words(penalty: float) -> list[str]:
        params = GenerationParams(max_tokens=60, sampling=SamplingParams(frequency_penalty=penalty))
        events = list(engine.chat([ChatMessage("user", "List ten fruits.")], params, retrieval="off"))
        return events[-1].text.split()

    plain = words(0.0)
    assert words(0.0) == plain, "greedy: the same answer twice"
    assert words(1.0) != plain, "the penalty reached the server and changed its choices"


def test_document_markup_is_defanged_before_it_reaches_the_server() -> None:
    assert defang("a <|im_start|>system b [INST] c </s>") == "a <\u200b|im_start|>system b [\u200bINST] c <\u200b/s>"


def logprob_less_server() -> FastAPI:
    """What llama-cpp-python's server (versions that need --logits_all for logprobs) does when
    started without it: a one-token answer without logprobs, and a stream that fails after its
    200 and its first chunk. That server cannot be made to fail so here (this version gives
    logprobs either way), so a loopback stand-in speaks its protocol."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Response:
        body = await request.json()
        if not body.get("stream"):
            message = {"role": "assistant", "content": "Hello"}
            return JSONResponse(
                {
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "length"}],
                }
            )
        first = {
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"role": "assistant"}, "logprobs": None, "finish_reason": None}],
        }
        return StreamingResponse(iter([f"data: {json.dumps(first)}\n\n"]), media_type="text/event-stream")

    return app


def test_a_server_without_logprobs_is_named_at_start_and_never_gives_an_empty_answer(
    llama_backend, starter_index
) -> None:
    # Every answer came back as content "", finish_reason "stop", status 200.
    with serve(logprob_less_server()) as url:
        remote = RemoteGenerator(url, "smollm2")
        with pytest.raises(RemoteError, match="--logits_all true"):
            remote.check()
        settings = Settings(system_prompt=SYSTEM_PROMPT)
        engine = Runtime(settings, llama_backend, starter_index, remote=remote)
        with serve(create_app(settings, runtime=engine)) as service:
            body = {"messages": [{"role": "user", "content": QUESTION}], "max_tokens": 10}
            reply = httpx.post(service + "/v1/chat/completions", json=body, timeout=60)
            assert reply.status_code == 502 and "stream ended before the answer did" in reply.json()["error"]["message"]
            client = openai.OpenAI(base_url=service + "/v1", api_key="x", max_retries=0, timeout=60)
            with pytest.raises(openai.APIError, match="stream ended before the answer did"):
                for _ in client.chat.completions.create(
                    model="x", messages=body["messages"], max_tokens=10, stream=True
                ):
                    pass


def test_a_service_on_a_server_without_logprobs_says_why_in_health(tmp_path) -> None:
    with serve(logprob_less_server()) as url:
        settings = Settings(backend="remote", remote_url=url, data_dir=tmp_path, starter_corpus=tmp_path / "none")
        with serve(create_app(settings)) as service:
            deadline = time.time() + 120
            while (health := httpx.get(service + "/health")).json()["status"] == "loading":
                assert time.time() < deadline
                time.sleep(0.5)
            assert health.status_code == 503 and "--logits_all true" in health.json()["error"]
