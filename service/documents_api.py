"""Routes for the document collection: upload (JSON text or multipart files), list, read,
delete, search, and the status of background ingestion jobs."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from retrieval.document_index import DocumentIndex
from retrieval.parsing import UnsupportedDocument, media_type_for
from retrieval.store import DocumentRecord
from retrieval.types import Passage
from service.errors import APIError, error_body
from service.ingestion import IngestionQueue, Upload
from service.settings import Settings


class DocumentText(BaseModel):
    text: str = Field(min_length=1, description="The document's text (plain or Markdown).")
    title: str = ""
    source: str = Field(default="", description="Where it came from: a URL or a path, shown in citations.")
    id: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:\-]+$")


class DocumentBatch(BaseModel):
    documents: list[DocumentText] = Field(min_length=1)


UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [DocumentText.model_json_schema(), DocumentBatch.model_json_schema(ref_template="#/components/schemas/{model}")]
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                    "required": ["files"],
                }
            },
        },
    }
}


def record_json(record: DocumentRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": "document",
        "title": record.title,
        "source": record.source,
        "media_type": record.media_type,
        "characters": record.n_chars,
        "chunks": record.n_chunks,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def passage_json(passage: Passage) -> dict[str, Any]:
    return {
        "document_id": passage.doc_id,
        "title": passage.title,
        "source": passage.source,
        "text": passage.text,
        "score": passage.score,
        "similarity": passage.similarity,
        "start": passage.start,
        "end": passage.end,
    }


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with a 413 as soon as it passes `limit` (whatever Content-Length says)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"the upload is {int(declared)} bytes; the limit is {limit}", code="upload_too_large")
    body = bytearray()
    async for piece in request.stream():
        body.extend(piece)
        if len(body) > limit:
            raise APIError(413, f"the upload passes the limit of {limit} bytes", code="upload_too_large")
    return bytes(body)


def _json_uploads(body: bytes) -> list[Upload]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise APIError(400, "the body is not valid JSON", code="invalid_json") from None
    try:
        if isinstance(payload, dict) and "documents" in payload:
            documents = DocumentBatch.model_validate(payload).documents
        else:
            documents = [DocumentText.model_validate(payload)]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or None
        raise APIError(400, f"{where or 'body'}: {first['msg']}", param=where, code="invalid_value") from None
    if len(documents) == 1 and not documents[0].text.strip():
        raise APIError(400, "the document's text is empty", param="text")
    # Each is read in the job, where one that cannot be read fails alone.
    return [
        Upload(_printable(d.title or d.source or d.id or "") or f"document {n + 1}", text=d.text, title=d.title, source=d.source, doc_id=d.id)
        for n, d in enumerate(documents)
    ]


def _printable(name: str) -> str:
    """A name for the job's results that JSON can carry (a bad title still names its document)."""
    return name.encode("utf-8", errors="replace").decode("utf-8")


async def _file_uploads(request: Request, body: bytes, max_files: int) -> list[Upload]:
    request._body = body  # already read within the limit: let Starlette parse it from memory
    try:
        form = await request.form(max_files=max_files, max_fields=max_files)
    except Exception as exc:  # malformed multipart, or too many parts
        if "Too many files" in str(exc):
            raise APIError(413, f"more than {max_files} files in one upload", param="files", code="too_many_documents") from None
        raise APIError(400, f"the multipart body could not be read: {exc}", code="invalid_multipart") from None
    files = [v for v in form.getlist("files") + form.getlist("file") if isinstance(v, UploadFile)]
    if not files:
        raise APIError(400, "attach documents as multipart fields named 'files'", param="files")
    uploads = []
    for f in files:
        declared = f.content_type if f.content_type != "application/octet-stream" else None
        try:
            media_type_for(f.filename, declared)
        except UnsupportedDocument as exc:
            raise APIError(415, f"{f.filename}: {exc}", param="files", code="unsupported_file_type") from None
        data = await f.read()
        if not data:
            raise APIError(400, f"{f.filename or 'a file'} is empty", param="files")
        uploads.append(Upload(f.filename or "upload", data=data, media_type=declared))
    return uploads


def documents_router(settings: Settings) -> APIRouter:
    router = APIRouter()

    def index_of(request: Request) -> DocumentIndex:
        engine = request.app.state.engine
        if engine is None:
            raise APIError(503, "the service is still loading", "service_unavailable", code="loading")
        return engine.index

    def jobs_of(request: Request) -> IngestionQueue:
        index_of(request)
        return request.app.state.ingestion

    @router.post("/v1/documents", openapi_extra=UPLOAD_SCHEMA, status_code=201, responses={202: {"description": "queued"}})
    async def upload(request: Request) -> JSONResponse:
        jobs = jobs_of(request)
        body = await read_limited(request, settings.max_upload_bytes)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            uploads = await _file_uploads(request, body, settings.max_upload_files)
        elif kind in ("application/json", ""):
            uploads = _json_uploads(body)
        else:
            raise APIError(415, f"send JSON or multipart/form-data, not {kind}", code="unsupported_media_type")
        if len(uploads) > settings.max_upload_files:
            raise APIError(413, f"{len(uploads)} documents in one upload; the limit is {settings.max_upload_files}", code="too_many_documents")
        job = jobs.submit(uploads)
        if len(body) > settings.upload_wait_bytes or not await jobs.wait(job, settings.upload_wait_seconds):
            return JSONResponse(job.as_json(), status_code=202, headers={"Location": f"/v1/documents/jobs/{job.id}"})
        if job.status == "interrupted":  # the service is stopping
            return JSONResponse({**error_body(str(job.error), "server_error", None, "interrupted"), "job": job.as_json()}, status_code=503)
        if job.status == "failed":
            reasons = "; ".join(f"{r['name']}: {r.get('error', '')}" for r in job.results if r["status"] == "failed")
            message = f"{job.error}: {reasons}" if reasons else str(job.error)
            param = "files" if kind == "multipart/form-data" else "documents"
            body = error_body(message, "invalid_request_error", param, "unreadable_document")
            return JSONResponse({**body, "job": job.as_json()}, status_code=422)
        return JSONResponse(job.as_json(), status_code=201)

    @router.get("/v1/documents/jobs/{job_id}")
    async def job_status(job_id: str, request: Request) -> dict[str, Any]:
        job = jobs_of(request).get(job_id)
        if job is None:
            raise APIError(404, f"no ingestion job {job_id!r}", "not_found_error", param="job_id")
        return job.as_json()

    @router.get("/v1/documents")
    async def list_documents(
        request: Request, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=10**9)
    ) -> dict[str, Any]:
        index = index_of(request)
        records = await asyncio.to_thread(index.list, limit, offset)
        total = (await asyncio.to_thread(index.stats))["documents"]
        return {"object": "list", "data": [record_json(r) for r in records], "total": total}

    @router.get("/v1/documents/{doc_id}")
    async def get_document(doc_id: str, request: Request) -> dict[str, Any]:
        index = index_of(request)
        record = await asyncio.to_thread(index.get, doc_id)
        if record is None:
            raise APIError(404, f"no document {doc_id!r}", "not_found_error", param="doc_id")
        return {**record_json(record), "text": await asyncio.to_thread(index.text, doc_id)}

    @router.delete("/v1/documents/{doc_id}")
    async def delete_document(doc_id: str, request: Request) -> dict[str, Any]:
        index = index_of(request)
        if not await asyncio.to_thread(index.delete, doc_id):
            raise APIError(404, f"no document {doc_id!r}", "not_found_error", param="doc_id")
        await asyncio.to_thread(index.save)
        return {"id": doc_id, "object": "document", "deleted": True}

    @router.get("/v1/search")
    async def search(
        request: Request,
        q: str = Query(min_length=1, max_length=2000),
        k: int = Query(5, ge=1, le=50),
        mode: Literal["hybrid", "dense", "lexical"] = "hybrid",
    ) -> dict[str, Any]:
        index = index_of(request)
        if not q.strip():
            raise APIError(400, "q is blank", param="q")
        found = await asyncio.to_thread(index.search, q, k, mode)
        return {"object": "list", "query": q, "data": [passage_json(p) for p in found]}

    return router
