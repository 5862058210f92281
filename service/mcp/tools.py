"""The three tools' bodies, each within what its caller may read or write: the same checks as
the HTTP routes (service/api/access.py), so that MCP is one more way in, never a way around a
key's grant."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult
from pydantic import Field, ValidationError

from retrieval.ingest_plan import check_collection
from service.answer.completions import CompletionBuilder, collect
from service.api.access import Principal, require_write, search_scope
from service.api.chat_input import read_chat, start_answer
from service.api.errors import APIError
from service.api.requests import COLLECTION_PATTERN, ChatCompletionRequest, Message
from service.api.responses import SearchHit
from service.generator.backend import ContextOverflow
from service.generator.events import Event, PauseEvent
from service.generator.remote import RemoteError
from service.mcp.results import AddedDocument, AskOutput, SearchOutput, tool_result
from service.mcp.services import ServicesSource
from service.runtime.ingestion import Upload

CallerOf = Callable[[Context], Principal]
CollectionName = Annotated[str, Field(pattern=COLLECTION_PATTERN, max_length=64)]
OneCollection = Annotated[
    CollectionName | None, Field(description="Only this collection (default: every one you may read).")
]


@contextmanager
def as_tool_errors() -> Iterator[None]:
    """A refusal or a bad argument becomes the tool's error, said in words the model can act on
    (a collection it may not read reads as one that does not exist, as over HTTP)."""
    try:
        yield
    except APIError as exc:
        raise ToolError(exc.message) from None
    except (ContextOverflow, RemoteError, ValueError) as exc:  # ValidationError is a ValueError
        raise ToolError(_first_error(exc) if isinstance(exc, ValidationError) else str(exc)) from None


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc']) or 'arguments'}: {first['msg']}"


class Tools:
    """The tools' bodies; their docstrings are what an MCP client's model reads about them."""

    def __init__(self, services: ServicesSource, caller: CallerOf) -> None:
        self.services = services
        self.caller = caller

    async def search(
        self,
        query: Annotated[str, Field(min_length=1, max_length=2000, description="What to look for.")],
        ctx: Context,
        collection: OneCollection = None,
        k: Annotated[int, Field(ge=1, le=50, description="How many passages.")] = 5,
    ) -> Annotated[CallToolResult, SearchOutput]:
        """Search the local document index (hybrid: meaning and keywords) and return the best
        passages, each with its title, source, document id, collection and score."""
        if not query.strip():
            raise ToolError("query is blank")
        with as_tool_errors():
            scope = search_scope(self.caller(ctx), [collection] if collection else None)
        services = await self.services()
        found = await asyncio.to_thread(services.runtime.index.search, query, k, "hybrid", scope)
        return tool_result(SearchOutput(query=query, passages=[SearchHit.of(p) for p in found]))

    async def ask(
        self,
        question: Annotated[str, Field(min_length=1, max_length=20_000, description="The question to answer.")],
        ctx: Context,
        collection: OneCollection = None,
        retrieval: Annotated[
            Literal["auto", "always", "off"],
            Field(description="auto: search when the model finds knowledge missing; always: first; off: never."),
        ] = "auto",
        max_tokens: Annotated[int | None, Field(ge=1, description="The answer's length limit, in tokens.")] = None,
    ) -> Annotated[CallToolResult, AskOutput]:
        """Have the service's model answer a question. It pauses mid-answer to search the local
        index when it lacks knowledge, then resumes; the answer cites its sources [n]. Returns
        the answer, the sources it cites and each pause (what it searched for, what it found)."""
        with as_tool_errors():
            body = ChatCompletionRequest(
                messages=[Message(role="user", content=question)],
                retrieval=retrieval,
                collections=[collection] if collection else None,
                max_tokens=max_tokens,
            )
            principal = self.caller(ctx)
            services = await self.services()
            runtime, settings = services.runtime, services.settings
            chat = read_chat(body, runtime, settings, principal)
            builder = CompletionBuilder(runtime.backend, settings.model.model_name, False, 0, chat.question)
            events = start_answer(chat, runtime, services.worker)
            completion = await collect(builder, services.metrics.observe(_reporting_pauses(events, ctx)))
        output = AskOutput(
            answer=completion.choices[0].message.content or "",
            finish_reason=completion.choices[0].finish_reason,
            sources=completion.sources,
            pauses=completion.pauses,
        )
        return tool_result(output)

    async def add_document(
        self,
        text: Annotated[str, Field(min_length=1, description="The document's text (plain or Markdown).")],
        ctx: Context,
        title: Annotated[str, Field(max_length=1000, description="Its title (default: its first heading).")] = "",
        source: Annotated[str, Field(max_length=2000, description="Where it came from (a URL or path).")] = "",
        id: Annotated[
            str | None,
            Field(
                min_length=1,
                max_length=200,
                pattern=r"^[A-Za-z0-9._:\-]+$",
                description="Its id; a document with this id in the collection is replaced (default: derived).",
            ),
        ] = None,
        collection: Annotated[CollectionName, Field(description="The collection it goes to.")] = "default",
    ) -> Annotated[CallToolResult, AddedDocument]:
        """Add a text document to the local index, so that `search` and `ask` find it. Returns
        its id and collection, and how many chunks it was split into."""
        if not text.strip():
            raise ToolError("the document's text is empty")
        principal = self.caller(ctx)
        with as_tool_errors():
            require_write(principal, check_collection(collection))
        services = await self.services()
        limits = services.settings.server
        if len(text.encode("utf-8")) > limits.max_upload_bytes:
            raise ToolError(f"the document passes the upload limit of {limits.max_upload_bytes} bytes")
        name = title or source or id or "document"
        upload = Upload(name, text=text, title=title, source=source, doc_id=id, collection=collection)
        job = services.ingestion.submit([upload], owner=principal.name)
        if not await services.ingestion.wait(job, limits.upload_wait_seconds):
            return tool_result(AddedDocument(job=job.id, status=job.status, collection=collection))
        if job.status != "done":
            raise ToolError(job.failure())
        result: dict[str, Any] = job.results[0]
        added = AddedDocument(
            job=job.id,
            status=result["status"],
            collection=result["collection"],
            id=result["id"],
            title=result["title"],
            chunks=result["chunks"],
        )
        return tool_result(added)


async def _reporting_pauses(events: AsyncIterator[Event], ctx: Context) -> AsyncIterator[Event]:
    """The answer's events, each pause also reported as progress (to a client that asked for
    it), so that a long answer shows what it is looking up."""
    pauses = 0
    async for event in events:
        if isinstance(event, PauseEvent):
            pauses += 1
            await ctx.report_progress(pauses, message=f"searching: {event.query}")
        yield event
