"""Chat routes: the OpenAI-compatible completion (whole or streamed) and the model list."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from service.answer.completions import CompletionBuilder, collect
from service.api.chat_input import read_chat, start_answer
from service.api.deps import MetricsDep, PrincipalDep, RuntimeDep, SettingsDep, WorkerDep
from service.api.errors import APIError, error_body
from service.api.requests import ChatCompletionRequest
from service.api.responses import ERRORS, ChatCompletion, ChatCompletionChunk, ErrorResponse, ModelCard, ModelList
from service.generator.backend import ContextOverflow
from service.generator.events import Event
from service.generator.remote import RemoteError

log = logging.getLogger(__name__)
router = APIRouter(tags=["chat"])
DISCONNECT_POLL_S = 0.5  # how often a non-streamed answer checks that its client is still there

STREAMED = {
    "description": "The answer: one object, or with `stream: true` server-sent events of chunks.",
    "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/ChatCompletionChunk"}}},
}


@router.get("/v1/models", response_model=ModelList, responses={401: ERRORS[401]})
async def list_models(settings: SettingsDep) -> ModelList:
    return ModelList(data=[ModelCard(id=settings.model.model_name)])


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={200: STREAMED, **ERRORS, 502: {"model": ErrorResponse, "description": "the remote generator failed"}},
)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    runtime: RuntimeDep,
    worker: WorkerDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> Response:
    chat = read_chat(body, runtime, settings, principal)
    # Whatever name the client sent, the answer names the model that wrote it.
    builder = CompletionBuilder(
        runtime.backend, settings.model.model_name, body.logprobs, body.top_logprobs or 0, chat.question
    )
    answer = start_answer(chat, runtime, worker)
    events = metrics.observe(answer)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        stream = server_sent_events(builder, events, include_usage)
        return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    try:
        completion = await collect_while_connected(request, collect(builder, events))
    except ContextOverflow as exc:
        raise APIError(400, str(exc), param="messages", code="context_length_exceeded") from exc
    except RemoteError as exc:  # the remote generation server failed: a bad gateway
        raise APIError(502, str(exc), "server_error", code="generator_unavailable") from exc
    if completion is None:  # the client left: its slot is free already
        return Response(status_code=499)
    return JSONResponse(completion.model_dump(mode="json"))


async def collect_while_connected(request: Request, collecting: Awaitable[ChatCompletion]) -> ChatCompletion | None:
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


def _event(chunk: ChatCompletionChunk) -> str:
    return f"data: {chunk.model_dump_json()}\n\n"


async def server_sent_events(
    builder: CompletionBuilder, events: AsyncIterator[Event], include_usage: bool
) -> AsyncIterator[str]:
    try:
        async for event in events:
            chunk = builder.on_event(event)
            if chunk is not None:
                yield _event(chunk)
        for chunk in builder.final_chunks(include_usage):
            yield _event(chunk)
    except Exception as exc:  # mid-stream: the status line is gone, so an error event
        log.exception("stream failed")
        kind = "invalid_request_error" if isinstance(exc, ContextOverflow) else "server_error"
        yield f"data: {error_body(str(exc), kind).model_dump_json()}\n\n"
    yield "data: [DONE]\n\n"
