"""The clients people already use, against the running service: the request bodies Open WebUI
really sends (captured from Open WebUI 0.12.4, tests/data/clients) and LangChain's ChatOpenAI."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.live_server import serve_engine

CLIENTS = Path(__file__).resolve().parents[1] / "data" / "clients"
QUESTION = "Where was Zorblax Quintaro born?"


@pytest.fixture(scope="module")
def base_url(llama_backend, starter_index):
    with serve_engine(llama_backend, starter_index) as url:
        yield url


def captured(name: str) -> dict:
    return json.loads((CLIENTS / f"open_webui_{name}.json").read_text())


def test_open_webui_chat_turn_with_its_36_tools_is_answered_from_the_document(base_url) -> None:
    body = captured("chat")  # exactly as Open WebUI sent it: streamed, tools offered, no tool_choice
    assert body["stream"] and len(body["tools"]) == 36 and "tool_choice" not in body
    chunks = []
    with httpx.stream("POST", base_url + "/v1/chat/completions", json=body, timeout=120) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line[6:]))
    deltas = [c["choices"][0]["delta"] for c in chunks if c.get("choices")]
    assert not any("tool_calls" in d for d in deltas), "the service never calls a tool"
    content = "".join(d.get("content") or "" for d in deltas)
    last = next(c for c in reversed(chunks) if c.get("choices"))
    assert last["choices"][0]["finish_reason"] in ("stop", "length")
    assert [s["source"].rsplit("/", 1)[-1] for s in last["sources"]] == ["zorblax-quintaro.md"]
    assert "Vellmora" in content and "Sources:" in content


@pytest.mark.parametrize("task", ["title", "tags", "follow_ups"])
def test_open_webui_background_tasks_are_accepted(base_url, task) -> None:
    body = captured(task)
    # The bodies as sent, but answers cut short: what is tested is that the service takes them
    # (a 512-token answer from a 135M model proves nothing more and takes 20 s).
    body["max_tokens"] = 12
    response = httpx.post(base_url + "/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["object"] == "chat.completion" and reply["choices"][0]["message"]["content"]
    # A notice quotes the start of the task prompt, never its example JSON, which Open WebUI
    # would parse as the model's answer.
    notices = reply["choices"][0]["message"]["content"].partition("\n\n(I ")[2]
    assert "{" not in notices and "}" not in notices


def test_open_webui_lists_the_model(base_url) -> None:
    assert "GET /v1/models" in (CLIENTS / "open_webui_models.txt").read_text().splitlines()
    models = httpx.get(base_url + "/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["smollm2-135m-instruct"]


def test_langchain_chat_openai_invokes_and_streams(base_url) -> None:
    from langchain_core.messages import HumanMessage
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=base_url + "/v1", api_key="unused", model="anything", max_tokens=40, max_retries=0)
    answer = chat.invoke([HumanMessage(QUESTION)])
    assert "Vellmora" in answer.content
    assert answer.response_metadata["model_name"] == "smollm2-135m-instruct"
    assert answer.usage_metadata["output_tokens"] > 0
    pieces = [chunk.content for chunk in chat.stream(QUESTION)]
    assert len(pieces) > 3 and "Vellmora" in "".join(pieces)
