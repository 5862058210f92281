"""Where the tools find the runtime: the objects the app's lifespan leaves on `app.state`, over
HTTP and over stdio alike."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI
from mcp.server.mcpserver.exceptions import ToolError

from service.api.metrics import ServiceMetrics
from service.runtime.ingestion import IngestionQueue
from service.runtime.runtime import Runtime
from service.runtime.worker import GenerationWorker
from service.settings import Settings

LOAD_POLL_S = 0.2


@dataclass(frozen=True)
class Services:
    """What a tool works with, as the app's lifespan left it on `app.state`."""

    runtime: Runtime
    worker: GenerationWorker
    ingestion: IngestionQueue
    settings: Settings
    metrics: ServiceMetrics


ServicesSource = Callable[[], Awaitable[Services]]


def services_of(app: FastAPI, wait: bool) -> ServicesSource:
    """The app's loaded services. While the model loads, an HTTP caller hears so (as a route
    answers 503); a stdio caller, whose client started the process a moment ago, waits."""

    async def services() -> Services:
        state = app.state
        while state.runtime is None:
            if state.load_error is not None:
                raise ToolError(f"the service could not load: {state.load_error}")
            if not wait:
                raise ToolError("the model is still loading; try again in a moment")
            await asyncio.sleep(LOAD_POLL_S)
        return Services(state.runtime, state.worker, state.ingestion, state.settings, state.metrics)

    return services
