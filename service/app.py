"""Routes. Heavy objects are built in the lifespan and handed to routes through app.state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from service.auth import APIKeyMiddleware
from service.citations import strip_citations
from service.completions import CompletionBuilder, collect
from service.documents_api import documents_router
from service.engine import Engine, follow_up, last_question
from service.ingestion import IngestionQueue
from service.metrics import CONTENT_TYPE, ServiceMetrics
from service.errors import (
    APIError,
    api_error_handler,
    error_body,
    http_error_handler,
    unexpected_error_handler,
    validation_error_handler,
)
from service.generator.backend import ContextOverflow
from service.generator.chat_template import ChatMessage
from service.generator.remote import RemoteError
from service.generator.decode_loop import GenerationParams
from service.generator.events import PauseEvent
from service.generator.sampling import SamplingParams
from service.settings import Settings
from service.text_checks import text_problem
from service.types import ChatCompletionRequest
from service.worker import GenerationWorker

log = logging.getLogger(__name__)
DISCONNECT_POLL_S = 0.5  # how often a non-streamed answer checks that its client is still there
CHAT_PAGE = Path(__file__).resolve().parent / "static" / "chat.html"


async def collect_while_connected(request: Request, collecting: Awaitable[dict[str, Any]]) -> dict[str, Any] | None:
    """The whole answer, or None as soon as its client disconnects: the answer is then
    cancelled (its slot freed, counted as cancelled), as a streamed one is."""
    task = asyncio.ensure_future(collecting)
    while True:
        done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
        if done:
            return task.result()
        if await request.is_disconnected():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return None


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The app; the engine loads in the background so that /health answers 503 meanwhile."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = None
        app.state.load_error = None
        app.state.worker = None

        app.state.ingestion = None

        def ready(loaded: Engine) -> None:
            ingestion = IngestionQueue(loaded.index, jobs_dir=settings.data_dir / "jobs")
            app.state.worker = GenerationWorker(
                loaded.slots,
                cached_tokens=lambda backend: backend.tokens,
                before_step=lambda backend: backend.share_cores(ingestion.running),
            )
            app.state.ingestion = ingestion
            app.state.engine = loaded

        loader = None
        if engine is not None:
            ready(engine)
        else:

            async def load() -> None:
                try:
                    ready(await asyncio.to_thread(Engine.load, settings))
                except Exception as exc:  # reported by /health rather than killing the server
                    log.exception("loading failed")
                    app.state.load_error = str(exc)

            loader = asyncio.create_task(load())
        yield
        if loader is not None:
            loader.cancel()
        if app.state.ingestion is not None:
            app.state.ingestion.stop()  # first: its job must not run on while answers end
        if app.state.worker is not None:
            app.state.worker.stop()

    app = FastAPI(title="ragpause", version="0.1.0", lifespan=lifespan)
    app.add_exception_handler(APIError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(HTTPException, http_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
    if settings.api_key is not None:
        app.add_middleware(APIKeyMiddleware, key=settings.api_key.get_secret_value())
    app.include_router(documents_router(settings))

    metrics = ServiceMetrics()

    def ready_engine(request: Request) -> Engine:
        loaded = request.app.state.engine
        if loaded is None:
            raise APIError(503, "the model is still loading", "service_unavailable", code="loading")
        return loaded

    page = CHAT_PAGE.read_text(encoding="utf-8")  # read once, served from memory

    @app.get("/", include_in_schema=False)
    async def chat_page() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        engine_ = ready_engine(request)
        worker, ingestion = request.app.state.worker, request.app.state.ingestion
        text = metrics.exposition(worker.active, worker.waiting, ingestion.waiting, lambda: engine_.index.store.counts()[1])
        return Response(text, media_type=CONTENT_TYPE)

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        if request.app.state.load_error:
            return JSONResponse({"status": "error", "error": request.app.state.load_error}, status_code=503)
        if request.app.state.engine is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        worker = request.app.state.worker
        return JSONResponse(
            {
                "status": "ok",
                "generating": worker.active,
                "queued": worker.waiting,
                "ingestion_queued": request.app.state.ingestion.waiting,
            }
        )

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": settings.model_name, "object": "model", "created": 0, "owned_by": "ragpause"}],
        }

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> JSONResponse | StreamingResponse:
        engine_ = ready_engine(request)
        as_sent = [ChatMessage("system" if m.role == "developer" else m.role, m.text()) for m in body.messages]
        for n, message in enumerate(as_sent):
            if problem := text_problem(message.content, f"messages[{n}].content"):
                raise APIError(400, problem, param=f"messages.{n}.content", code="invalid_text")
        follow = follow_up(as_sent)  # read before the source lists are stripped
        messages = [ChatMessage(m.role, strip_citations(m.content)) if m.role == "assistant" else m for m in as_sent]
        if not any(m.role == "user" for m in messages):
            raise APIError(400, "messages must contain at least one user message", param="messages")
        last_user = max(n for n, m in enumerate(messages) if m.role == "user")
        if not messages[last_user].content.strip():
            raise APIError(400, "the last user message is empty: there is no question to answer", param=f"messages.{last_user}.content")
        prompt = engine_.prompt(messages)
        prompt_len = len(prompt)
        limit = body.token_limit(settings.default_max_tokens)
        if limit > settings.max_tokens_limit:
            param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
            raise APIError(400, f"{param} is {limit}; this service allows at most {settings.max_tokens_limit}", param=param)
        if prompt_len + limit > engine_.backend.n_ctx:
            if prompt_len >= engine_.backend.n_ctx:
                raise APIError(
                    400,
                    f"the messages take {prompt_len} tokens; this model's context holds {engine_.backend.n_ctx}",
                    param="messages",
                    code="context_length_exceeded",
                )
            limit = engine_.backend.n_ctx - prompt_len
        params = GenerationParams(
            max_tokens=limit,
            sampling=SamplingParams(
                temperature=body.temperature,
                top_p=body.top_p,
                seed=body.seed,
                top_k_signals=max(5, body.top_logprobs or 0),
                frequency_penalty=body.frequency_penalty,
                presence_penalty=body.presence_penalty,
                logit_bias=body.bias_pairs(),
            ),
            stop=body.stop_list(),
        )
        outside = [t for t, _ in body.bias_pairs() if t >= engine_.backend.n_vocab]
        if outside and engine_.remote is None:  # a remote model has its own vocabulary
            message = f"logit_bias names token {outside[0]}; the vocabulary has {engine_.backend.n_vocab}"
            raise APIError(400, message, param="logit_bias")
        if body.retrieval != "off" and engine_.searchers[body.sources] is None:
            raise APIError(
                400, f"sources={body.sources!r} needs a web search endpoint, and none is configured", param="sources"
            )
        question = last_question(messages)
        builder = CompletionBuilder(
            # Whatever name the client sent, the answer names the model that wrote it.
            engine_.backend, settings.model_name, body.logprobs, body.top_logprobs or 0, question
        )
        answer = request.app.state.worker.run(
            lambda slot: engine_.chat(messages, params, body.retrieval, prompt, body.sources, backend=slot, follow_up=follow),
            prompt,
            waits=lambda event: isinstance(event, PauseEvent),  # the next step searches
            detached=engine_.remote is not None,  # every step reads the remote server's stream
        )
        events = metrics.observe(answer)
        if not body.stream:
            try:
                completion = await collect_while_connected(request, collect(builder, events))
                if completion is None:  # the client left: its slot is free already
                    return Response(status_code=499)
                return JSONResponse(completion)
            except ContextOverflow as exc:
                raise APIError(400, str(exc), param="messages", code="context_length_exceeded") from exc
            except RemoteError as exc:  # the remote generation server failed: a bad gateway
                raise APIError(502, str(exc), "server_error", code="generator_unavailable") from exc

        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        async def sse() -> AsyncIterator[str]:
            try:
                async for event in events:
                    chunk = builder.on_event(event)
                    if chunk is not None:
                        yield f"data: {json.dumps(chunk)}\n\n"
                for chunk in builder.final_chunks(include_usage):
                    yield f"data: {json.dumps(chunk)}\n\n"
            except Exception as exc:  # mid-stream: the status line is gone, so an error event
                log.exception("stream failed")
                kind = "invalid_request_error" if isinstance(exc, ContextOverflow) else "server_error"
                yield f"data: {json.dumps(error_body(str(exc), kind))}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app
