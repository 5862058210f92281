"""The FastAPI app: the lifespan builds the heavy objects once and leaves them on `app.state`,
where the routes' typed dependencies (service/api/deps.py) find them."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException

from service.api.auth import APIKeyMiddleware
from service.api.errors import (
    APIError,
    api_error_handler,
    http_error_handler,
    unexpected_error_handler,
    validation_error_handler,
)
from service.api.metrics import ServiceMetrics
from service.api.requests import DocumentBatch, DocumentText
from service.api.responses import ChatCompletionChunk
from service.api.routes import chat, documents, search, system
from service.mcp import http as mcp_http
from service.runtime.ingestion import IngestionQueue
from service.runtime.runtime import Runtime
from service.runtime.worker import GenerationWorker
from service.settings import Settings

log = logging.getLogger(__name__)


def start(app: FastAPI, runtime: Runtime) -> None:
    """The loaded runtime goes to work: its generation slots and its ingestion queue."""
    ingestion = IngestionQueue(runtime.index, jobs_dir=app.state.settings.data_dir / "jobs")

    def sharing() -> bool:
        """Another thread of ours holds a core: an ingestion job, or a re-embedding."""
        return ingestion.running or runtime.index.reembedding_running()

    app.state.worker = GenerationWorker(
        runtime.slots,
        cached_tokens=lambda backend: backend.tokens,
        before_step=lambda backend: backend.share_cores(sharing()),
    )
    app.state.ingestion = ingestion
    app.state.runtime = runtime


def keep_out_of_full_collections() -> None:
    """What the runtime loaded lives as long as the process, about half a million objects Python's
    cyclic collector tracks; every full collection walked them all (about 225 ms here). Frozen,
    collections skip them: with the index on milvus-lite, whose server is Python in this process,
    one search in ~115 waited on such a collection, and none did once frozen (bench/gc_pauses.py).
    Only for a runtime the service loaded itself: one given (tests, benchmarks) is the caller's."""
    gc.collect()
    gc.freeze()
    log.info("%d objects loaded at start are kept out of garbage collections", gc.get_freeze_count())


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Loads the runtime in the background (or takes the one given), so that /health answers
    503 meanwhile; runs the MCP endpoint's sessions; at shutdown ends them, then stops
    ingestion, then generation."""
    state = app.state
    state.runtime = state.load_error = state.worker = state.ingestion = None
    loader = None
    if state.given_runtime is not None:
        start(app, state.given_runtime)
    else:

        async def load() -> None:
            try:
                start(app, await asyncio.to_thread(Runtime.load, state.settings))
            except Exception as exc:  # reported by /health rather than killing the server
                log.exception("loading failed")
                state.load_error = str(exc)
            else:
                keep_out_of_full_collections()

        loader = asyncio.create_task(load())
    async with state.mcp.running():
        yield
    if loader is not None:
        loader.cancel()
    if state.ingestion is not None:
        state.ingestion.stop()  # first: its job must not run on while answers end
    if state.worker is not None:
        state.worker.stop()


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """The app; `runtime`: one already loaded (tests, benchmarks), else it loads at start."""
    app = FastAPI(title="ragpause", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings or Settings()
    app.state.given_runtime = runtime
    app.state.metrics = ServiceMetrics()
    app.add_exception_handler(APIError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(HTTPException, http_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
    if app.state.settings.server.guarded:
        app.add_middleware(APIKeyMiddleware, server=app.state.settings.server)
    for routes in (chat, documents, search, system):
        app.include_router(routes.router)
    app.state.mcp = mcp_http.mount(app)  # /mcp, behind the same keys
    app.openapi = lambda: openapi_schema(app)  # type: ignore[method-assign]
    return app


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, told the truth: an invalid request is a 400 in OpenAI's envelope (never
    FastAPI's 422), and the stream's chunk has its own schema."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        for operation in (op for path in schema["paths"].values() for op in path.values()):
            unprocessable = operation["responses"].get("422", {})
            if "HTTPValidationError" in str(unprocessable):
                del operation["responses"]["422"]
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        # Bodies no route declares as its model: the stream's chunks, an upload's JSON forms.
        for model, mode in (
            (ChatCompletionChunk, "serialization"),
            (DocumentText, "validation"),
            (DocumentBatch, "validation"),
        ):
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        app.openapi_schema = schema
    return app.openapi_schema
