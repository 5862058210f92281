"""`python -m service.mcp`: the MCP tools over stdio, for a client that starts the service as its
own subprocess. The caller is local, with every collection (as on a service without keys): API
keys guard HTTP, and whoever can start this process can read the data directory anyway.

stdout carries the protocol and nothing else: logging goes to stderr, and while the server runs
the SDK points file descriptor 1 at stderr, so a stray print or a native library's output
cannot corrupt a message. The model loads only once that is so.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from mcp.server.mcpserver import MCPServer
from pydantic import ValidationError

from service.api.access import ANYONE, Principal
from service.api.app import create_app, lifespan
from service.mcp.server import build_server
from service.mcp.services import services_of
from service.settings import Settings


def local_caller(_: object) -> Principal:
    return ANYONE


async def serve(settings: Settings) -> None:
    """Serve until the client closes stdin. The app's own lifespan loads the runtime in the
    background (the client's handshake is answered at once; the first tool call waits for the
    model) and stops ingestion and generation at the end."""
    app = create_app(settings)

    @asynccontextmanager
    async def app_running(_: MCPServer) -> AsyncIterator[None]:
        async with lifespan(app):  # entered by the SDK after it has taken stdin and stdout
            yield

    await build_server(services_of(app, wait=True), local_caller, lifespan=app_running).run_stdio_async()


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except ValidationError as exc:  # a setting the user can fix: say so, on stderr
        print(f"ragpause-mcp: invalid settings: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    anyio.run(serve, settings)


if __name__ == "__main__":
    main()
