"""Serve an app under uvicorn on a free loopback port for the length of a test module."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serve_engine(backend, index, **settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The service over `backend` and `index`, with these settings (the default system prompt unless given)."""
    from service.api.app import create_app
    from service.runtime.runtime import Runtime
    from service.settings import Settings
    from tests.known_fact import SYSTEM_PROMPT

    config = Settings(**{"system_prompt": SYSTEM_PROMPT, **settings})
    with serve(create_app(config, runtime=Runtime(config, backend, index))) as url:
        yield url


@contextmanager
def serve_empty_index(backend, embedder, data_dir, **settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The service over a new, empty index in `data_dir`, which is also its data directory
    (documents uploaded through the API land there)."""
    from retrieval.document_index import DocumentIndex

    with serve_engine(backend, DocumentIndex(data_dir, embedder), data_dir=data_dir, **settings) as url:
        yield url
