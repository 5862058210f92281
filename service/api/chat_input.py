"""A chat request read and checked before any token is generated: the conversation as the
model will see it, its prompt, and the decoding parameters clamped to the context window.

Everything a request can get wrong is found here and answered with a 400 that names the field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from query_unit.types import FollowUp
from service.answer.citations import strip_citations
from service.api.access import Principal, search_scope
from service.api.errors import APIError
from service.api.requests import ChatCompletionRequest
from service.generator.chat_template import ChatMessage
from service.generator.decode_loop import GenerationParams
from service.generator.events import Event, PauseEvent
from service.runtime.conversation import follow_up, last_question
from service.runtime.runtime import Retrieval, Runtime, Sources
from service.runtime.text_checks import text_problem
from service.runtime.worker import GenerationWorker
from service.settings import Settings


@dataclass(frozen=True)
class ChatInput:
    messages: list[ChatMessage]  # as the model reads them: earlier answers without our citations
    prompt: list[int]
    params: GenerationParams
    question: str
    follow_up: FollowUp | None
    collections: list[str] | None  # the local collections it may search (None: all)
    retrieval: Retrieval
    sources: Sources


def start_answer(chat: ChatInput, runtime: Runtime, worker: GenerationWorker) -> AsyncIterator[Event]:
    """The answer's events, generated on a slot of the worker (the chat route and MCP's `ask`)."""
    return worker.run(
        lambda slot: runtime.chat(
            chat.messages,
            chat.params,
            chat.retrieval,
            chat.prompt,
            chat.sources,
            backend=slot,
            follow_up=chat.follow_up,
            collections=chat.collections,
        ),
        chat.prompt,
        waits=lambda event: isinstance(event, PauseEvent),  # the next step searches
        detached=runtime.remote is not None,  # every step reads the remote server's stream
    )


def read_chat(body: ChatCompletionRequest, runtime: Runtime, settings: Settings, principal: Principal) -> ChatInput:
    """The request as the runtime answers it, or an APIError saying what is wrong with it."""
    collections = search_scope(principal, body.collections)
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
        message = "the last user message is empty: there is no question to answer"
        raise APIError(400, message, param=f"messages.{last_user}.content")
    prompt = runtime.prompt(messages)
    params = body.to_generation_params(_answer_budget(body, len(prompt), runtime.backend.n_ctx, settings))
    _check_bias(body, runtime)
    if body.retrieval != "off" and runtime.searchers[body.sources] is None:
        message = f"sources={body.sources!r} needs a web search endpoint, and none is configured"
        raise APIError(400, message, param="sources")
    return ChatInput(
        messages, prompt, params, last_question(messages), follow, collections, body.retrieval, body.sources
    )


def _answer_budget(body: ChatCompletionRequest, prompt_len: int, n_ctx: int, settings: Settings) -> int:
    """The answer's token limit: as asked (or the default), cut to what the context has left."""
    limit = body.token_limit(settings.model.default_max_tokens)
    allowed = settings.model.max_tokens_limit
    if limit > allowed:
        param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
        raise APIError(400, f"{param} is {limit}; this service allows at most {allowed}", param=param)
    if prompt_len >= n_ctx:
        message = f"the messages take {prompt_len} tokens; this model's context holds {n_ctx}"
        raise APIError(400, message, param="messages", code="context_length_exceeded")
    return min(limit, n_ctx - prompt_len)


def _check_bias(body: ChatCompletionRequest, runtime: Runtime) -> None:
    if runtime.remote is not None:  # a remote model has its own vocabulary
        return
    outside = [t for t, _ in body.bias_pairs() if t >= runtime.backend.n_vocab]
    if outside:
        message = f"logit_bias names token {outside[0]}; the vocabulary has {runtime.backend.n_vocab}"
        raise APIError(400, message, param="logit_bias")
