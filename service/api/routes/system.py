"""What is not the API proper: the chat page, the health check and Prometheus metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from service.api.deps import IngestionDep, MetricsDep, RuntimeDep, WorkerDep
from service.api.metrics import CONTENT_TYPE
from service.api.responses import Health, Reembedding

router = APIRouter(tags=["service"])
CHAT_PAGE = (Path(__file__).resolve().parents[2] / "static" / "chat.html").read_text(encoding="utf-8")


@router.get("/", include_in_schema=False)
async def chat_page() -> HTMLResponse:
    return HTMLResponse(CHAT_PAGE)


@router.get("/metrics", include_in_schema=False)
async def prometheus(runtime: RuntimeDep, worker: WorkerDep, ingestion: IngestionDep, metrics: MetricsDep) -> Response:
    def chunks() -> int:  # read only when scraped
        return runtime.index.chunk_count()

    def reembedding() -> tuple[int, int] | None:
        progress = runtime.index.reembedding_progress()
        return (progress.done, progress.total) if progress is not None else None

    text = metrics.exposition(worker.active, worker.waiting, ingestion.waiting, chunks, reembedding)
    return Response(text, media_type=CONTENT_TYPE)


@router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "loading or failed"}})
async def health(request: Request) -> JSONResponse:
    state = request.app.state
    if state.load_error:
        return _health(Health(status="error", error=state.load_error), 503)
    if state.runtime is None:
        return _health(Health(status="loading"), 503)
    worker = state.worker
    reply = Health(
        status="ok",
        generating=worker.active,
        queued=worker.waiting,
        ingestion_queued=state.ingestion.waiting,
        reembedding=Reembedding.of(state.runtime.index.reembedding_progress()),
    )
    return _health(reply, 200)


def _health(reply: Health, status: int) -> JSONResponse:
    return JSONResponse(reply.model_dump(mode="json"), status_code=status)
