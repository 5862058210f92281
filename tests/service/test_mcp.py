"""The MCP server, driven by the official SDK's own client: over streamable HTTP on /mcp (behind
the API keys, each tool within its key's collections) and over stdio (`python -m service.mcp`,
a subprocess that loads the real model and serves a local caller)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult

from tests.conftest import REPO, STARTER
from tests.live_server import serve_empty_index

TOOLS = {"search", "ask", "add_document"}
QUESTION = "Where was Zorblax Quintaro born?"
KEYS = [
    {"key": "key-a", "name": "team-a", "read": ["team-a"], "write": ["team-a"]},
    {"key": "key-b", "name": "team-b", "read": ["team-b", "default"], "write": ["team-b"]},
    {"key": "key-reader", "name": "reader", "read": ["team-a"], "write": []},
]
QUINTARO = "# Zorblax Quintaro\n\nZorblax Quintaro is a glass-eel biologist. He was born in {place}."


def over_http(url: str, key: str | None, statuses: list[int] | None = None, mode: str = "auto") -> Client:
    """The SDK's client on /mcp, sending `key` (if any); `statuses` collects each HTTP status.
    `mode`: "auto" speaks the newest protocol, "legacy" the handshake era most clients speak."""

    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    http = httpx2.AsyncClient(headers=headers, timeout=120, event_hooks={"response": [record]})
    return Client(streamable_http_client(url + "/mcp", http_client=http), mode=mode)


def run(url: str, key: str, scenario: Callable[[Client], Awaitable[Any]], mode: str = "auto") -> Any:
    async def connected() -> Any:
        async with over_http(url, key, mode=mode) as client:
            return await scenario(client)

    return asyncio.run(connected())


def call(url: str, key: str, tool: str, mode: str = "auto", **arguments: Any) -> CallToolResult:
    return run(url, key, lambda client: client.call_tool(tool, arguments), mode)


def text_of(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


@pytest.fixture(scope="module")
def base_url(llama_backend, embedder, tmp_path_factory):
    data = tmp_path_factory.mktemp("mcp")
    with serve_empty_index(llama_backend, embedder, data, api_key="key-admin", api_keys=KEYS) as url:
        yield url


@pytest.fixture(scope="module")
def indexed(base_url: str) -> str:
    """Each team's own Quintaro, added through MCP's add_document."""
    for key, collection, place in (("key-a", "team-a", "Vellmora"), ("key-b", "team-b", "Tarnwick")):
        added = call(
            base_url,
            key,
            "add_document",
            text=QUINTARO.format(place=place),
            id="quintaro",
            source=f"{collection}/quintaro.md",
            collection=collection,
        )
        assert not added.is_error, text_of(added)
        assert added.structured_content is not None
        assert added.structured_content["status"] == "added" and added.structured_content["chunks"] >= 1
        assert added.structured_content["collection"] == collection and "quintaro" in text_of(added)
    return base_url


def test_tools_are_listed_with_their_schemas(base_url: str) -> None:
    listed = run(base_url, "key-a", lambda client: client.list_tools())
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == TOOLS
    assert tools["search"].input_schema["required"] == ["query"]
    assert {"passages"} <= set(tools["search"].output_schema["properties"])
    assert {"answer", "sources", "pauses"} <= set(tools["ask"].output_schema["properties"])
    assert tools["search"].annotations.read_only_hint and not tools["add_document"].annotations.read_only_hint


def test_an_added_document_is_found_by_search_and_cited_by_ask(indexed: str) -> None:
    found = call(indexed, "key-a", "search", query=QUESTION, collection="team-a", k=3)
    assert not found.is_error, text_of(found)
    passages = found.structured_content["passages"]
    assert passages[0] | {"score": 0, "similarity": 0, "start": 0, "end": 0} == {
        "document_id": "quintaro",
        "collection": "team-a",
        "title": "Zorblax Quintaro",
        "source": "team-a/quintaro.md",
        "text": QUINTARO.format(place="Vellmora"),
        "score": 0,
        "similarity": 0,
        "start": 0,
        "end": 0,
    }
    assert "team-a/quintaro.md" in text_of(found) and "Vellmora" in text_of(found)

    asked = call(indexed, "key-a", "ask", question=QUESTION, retrieval="always", max_tokens=40)
    assert not asked.is_error, text_of(asked)
    answer = asked.structured_content
    assert answer["answer"].strip() and answer["finish_reason"] in ("stop", "length")
    assert [s["source"] for s in answer["sources"]] == ["team-a/quintaro.md"]
    assert answer["pauses"] and answer["pauses"][0]["query"] and answer["pauses"][0]["sources"]
    assert text_of(asked).startswith(answer["answer"])
    assert "Tarnwick" not in str(answer), "key-a's answer read nothing of team-b's"


def test_a_missing_or_wrong_key_is_refused_with_401(base_url: str) -> None:
    for key in (None, "key-c"):
        statuses: list[int] = []

        async def connect(key: str | None = key, statuses: list[int] = statuses) -> None:
            async with over_http(base_url, key, statuses) as client:
                await client.list_tools()

        with pytest.raises(ExceptionGroup) as refused:  # the SDK's task groups wrap its error
            asyncio.run(connect())
        assert refused.group_contains(MCPError)
        assert statuses and set(statuses) == {401}, statuses
    bare = httpx.post(base_url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert bare.status_code == 401 and bare.json()["error"]["code"] == "invalid_api_key"


def test_each_tool_stays_within_its_keys_collections(indexed: str) -> None:
    # A collection the key may not read is answered as if it did not exist, and leaks nothing,
    # in either protocol era (each carries the caller's request to the tool its own way).
    for mode in ("auto", "legacy"):
        other = call(indexed, "key-a", "search", mode, query=QUESTION, collection="team-b")
        assert other.is_error and "no collection 'team-b'" in text_of(other) and "Tarnwick" not in text_of(other)
    asked = call(indexed, "key-a", "ask", question=QUESTION, collection="team-b")
    assert asked.is_error and "Tarnwick" not in text_of(asked)
    # Unnamed, the search covers only what the key may read.
    mine = call(indexed, "key-b", "search", query=QUESTION)
    assert {p["collection"] for p in mine.structured_content["passages"]} == {"team-b"}
    # Writing needs write access: read-only is told so, unreadable is not found.
    for key, collection, said in (
        ("key-reader", "team-a", "may read collection 'team-a' but not change it"),
        ("key-a", "team-b", "no collection 'team-b'"),
    ):
        refused = call(indexed, key, "add_document", text="The Corvane bell rings at dawn.", collection=collection)
        assert refused.is_error and said in text_of(refused)
    admin = call(indexed, "key-admin", "search", query=QUESTION, k=5)
    assert {p["collection"] for p in admin.structured_content["passages"]} == {"team-a", "team-b"}


def test_stdio_serves_a_local_caller_with_the_whole_index(tmp_path: Path) -> None:
    """`python -m service.mcp` as a client starts it: it loads the model itself, answers the
    handshake at once and writes nothing to stdout but protocol messages."""
    (tmp_path / "embedders").symlink_to(REPO / "index_data" / "embedders")
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "service.mcp"],
        cwd=REPO,
        env={
            "RAGPAUSE_DATA_DIR": str(tmp_path),
            "RAGPAUSE_STARTER_CORPUS": str(STARTER),
            "RAGPAUSE_GENERATION_SLOTS": "1",
            "RAGPAUSE_API_KEY": "not-for-stdio",  # keys guard HTTP; the local caller has everything
        },
    )
    stray: list[Exception] = []

    async def noticed(message: Any) -> None:
        if isinstance(message, Exception):  # a line on stdout that is not a protocol message
            stray.append(message)

    async def session() -> tuple[set[str], CallToolResult, CallToolResult, CallToolResult]:
        with (tmp_path / "stderr.log").open("w") as errlog:
            async with Client(stdio_client(server, errlog=errlog), message_handler=noticed) as client:
                tools = {tool.name for tool in (await client.list_tools()).tools}
                found = await client.call_tool("search", {"query": QUESTION, "k": 2})
                added = await client.call_tool("add_document", {"text": "The Corvane bell rings at dawn in Tessaly."})
                asked = await client.call_tool("ask", {"question": QUESTION, "retrieval": "always", "max_tokens": 40})
                return tools, found, added, asked

    tools, found, added, asked = asyncio.run(session())
    log = (tmp_path / "stderr.log").read_text()
    assert tools == TOOLS, log[-2000:]
    assert not found.is_error, text_of(found) + log[-2000:]
    top = found.structured_content["passages"][0]
    assert top["source"].endswith("zorblax-quintaro.md") and top["collection"] == "default"
    assert not added.is_error and added.structured_content["status"] == "added", text_of(added)
    assert not asked.is_error, text_of(asked)
    answer = asked.structured_content
    assert answer["answer"].strip() and answer["pauses"]
    assert any(s["source"].endswith("zorblax-quintaro.md") for s in answer["sources"])
    assert not stray, stray
