"""Typed dependencies: what a route needs, taken from `app.state`, where the lifespan put it.

A route names what it uses (`runtime: RuntimeDep`) and gets it ready, or the request is answered
503 while the model loads; no route closes over settings or objects of its own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.api.access import Principal, principal_of
from service.api.errors import APIError
from service.api.metrics import ServiceMetrics
from service.runtime.ingestion import IngestionQueue
from service.runtime.runtime import Runtime
from service.runtime.worker import GenerationWorker
from service.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_runtime(request: Request) -> Runtime:
    runtime = request.app.state.runtime
    if runtime is None:
        raise APIError(503, "the model is still loading", "service_unavailable", code="loading")
    return runtime


def get_worker(request: Request, _: Annotated[Runtime, Depends(get_runtime)]) -> GenerationWorker:
    return request.app.state.worker


def get_ingestion(request: Request, _: Annotated[Runtime, Depends(get_runtime)]) -> IngestionQueue:
    return request.app.state.ingestion


def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
WorkerDep = Annotated[GenerationWorker, Depends(get_worker)]
IngestionDep = Annotated[IngestionQueue, Depends(get_ingestion)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
PrincipalDep = Annotated[Principal, Depends(principal_of)]
