"""The MCP server: the tools registered, with what a client reads about them."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from service.mcp.services import ServicesSource
from service.mcp.tools import CallerOf, Tools

INSTRUCTIONS = (
    "ragpause answers from a local document index. `search` returns passages with their sources; "
    "`ask` has the service's own model answer, pausing to search when it lacks knowledge, and cites "
    "what it read; `add_document` indexes text so later searches find it."
)

ServerLifespan = Callable[[MCPServer], AbstractAsyncContextManager[Any]]


@contextmanager
def root_logging_left_alone() -> Iterator[None]:
    """MCPServer's constructor calls logging.basicConfig, which would give every process that
    builds the app a root handler (a rich one, passing each library's debug lines on). Logging
    is configured by whoever runs us: a root logger with a handler makes that call do nothing."""
    root = logging.getLogger()
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        yield
    finally:
        root.removeHandler(placeholder)


def build_server(services: ServicesSource, caller: CallerOf, lifespan: ServerLifespan | None = None) -> MCPServer:
    """The MCP server; `caller` names who each call comes from (a key's principal over HTTP);
    `lifespan`: what runs while it serves (over stdio, the app's own lifespan)."""
    with root_logging_left_alone():
        server: MCPServer = MCPServer("ragpause", instructions=INSTRUCTIONS, version="0.1.0", lifespan=lifespan)
    tools = Tools(services, caller)
    for tool, hints in (
        (tools.search, ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        (tools.ask, ToolAnnotations(read_only_hint=True)),  # it may search the web, where one is set up
        # Not destructive-free: a document given an id already in its collection is replaced.
        (tools.add_document, ToolAnnotations(read_only_hint=False, idempotent_hint=True, open_world_hint=False)),
    ):
        server.add_tool(tool, description=inspect.getdoc(tool), annotations=hints)
    return server
