"""`/mcp` on the app: the MCP server's streamable-HTTP transport. It is a route like the others,
so the key middleware has already refused a request without a valid key and left the caller's
principal on the request, which each tool call reads from the request that carried it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from service.api.access import Principal, principal_of
from service.mcp.server import build_server
from service.mcp.services import services_of

PATH = "/mcp"


def http_caller(ctx: Context) -> Principal:
    """The principal the key middleware found for this call's request (anyone, where the
    service has no keys)."""
    request = ctx.request_context.request
    if not isinstance(request, Request):  # never over HTTP; refuse rather than guess
        raise ToolError("no HTTP request carries this call")
    return principal_of(request)


class MCPEndpoint:
    """The ASGI app at /mcp. Its session manager runs inside the app's lifespan; one can run
    only once, so each lifespan makes a new one."""

    def __init__(self, app: FastAPI) -> None:
        self.server = build_server(services_of(app, wait=False), http_caller)
        self.settings = app.state.settings

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        server = self.settings.server
        # With keys, a key guards /mcp (a page rebound to our address has none), and the Host
        # check would only refuse a proxy's; without keys, the SDK checks Host and Origin on a
        # loopback address, so that a web page cannot drive the tools through DNS rebinding.
        unchecked = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        # Called for its side effect: a fresh session manager (the Starlette app it returns is
        # not used; this endpoint serves the manager itself). An upload may be as large over
        # MCP as over /v1/documents.
        self.server.streamable_http_app(
            streamable_http_path=PATH,
            max_request_body_size=server.max_upload_bytes,
            transport_security=unchecked if server.guarded else None,
            host=server.host,
        )
        async with self.server.session_manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.server.session_manager.handle_request(scope, receive, send)


def mount(app: FastAPI) -> MCPEndpoint:
    """Serve MCP at /mcp on `app`; its lifespan must enter the returned endpoint's `running()`."""
    endpoint = MCPEndpoint(app)
    app.add_route(PATH, endpoint, include_in_schema=False)  # type: ignore[arg-type]  # an ASGI app, every method
    return endpoint
