"""Document routes: upload (JSON text or URLs, or multipart files), list, read, refresh (a URL's)
and delete documents, and follow the background jobs that index uploads."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from retrieval.ingest_plan import check_collection
from retrieval.web_documents import is_web_url
from service.api.access import require_read, require_write, search_scope
from service.api.deps import IngestionDep, PrincipalDep, RuntimeDep, SettingsDep
from service.api.errors import APIError, error_body
from service.api.requests import COLLECTION_PATTERN
from service.api.responses import (
    ERRORS,
    Collection,
    CollectionList,
    DeletedDocument,
    Document,
    DocumentList,
    DocumentWithText,
    ErrorResponse,
    Job,
    JobFailure,
)
from service.api.uploads import UPLOAD_SCHEMA, file_uploads, json_uploads, read_limited, url_fetcher
from service.runtime.ingestion import IngestionJob, IngestionQueue, Upload

router = APIRouter(tags=["documents"])
DEFAULT = "default"
COLLECTION = Query(DEFAULT, pattern=COLLECTION_PATTERN, description="The collection the document is in.")

UPLOAD_RESPONSES = {
    201: {"model": Job, "description": "indexed: the finished job"},
    202: {"model": Job, "description": "queued: poll the job at `Location`"},
    413: {"model": ErrorResponse, "description": "too large, or too many documents"},
    415: {"model": ErrorResponse, "description": "neither JSON nor multipart, or a file type that cannot be read"},
    422: {"model": JobFailure, "description": "no document in the upload could be read"},
    **ERRORS,
    503: {"model": JobFailure, "description": "the service stopped during the job (or is still loading)"},
}
REFRESH_RESPONSES = {
    201: {"model": Job, "description": "fetched: the finished job, its result 'replaced' or 'unchanged'"},
    202: {"model": Job, "description": "queued behind other jobs: poll the job at `Location`"},
    422: {"model": JobFailure, "description": "the page could not be fetched or read now (the document is kept)"},
    **ERRORS,
    503: {"model": JobFailure, "description": "the service stopped during the job (or is still loading)"},
}


@router.post("/v1/documents", openapi_extra=UPLOAD_SCHEMA, status_code=201, responses=UPLOAD_RESPONSES)
async def upload(
    request: Request,
    jobs: IngestionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    collection: str = Query(DEFAULT, pattern=COLLECTION_PATTERN, description="Where the documents go by default."),
) -> JSONResponse:
    limits = settings.server
    body = await read_limited(request, limits.max_upload_bytes)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        uploads = await file_uploads(request, body, limits.max_upload_files, collection)
    elif kind in ("application/json", ""):
        uploads = json_uploads(body, collection, url_fetcher(settings))
    else:
        raise APIError(415, f"send JSON or multipart/form-data, not {kind}", code="unsupported_media_type")
    if len(uploads) > limits.max_upload_files:
        message = f"{len(uploads)} documents in one upload; the limit is {limits.max_upload_files}"
        raise APIError(413, message, code="too_many_documents")
    for name in sorted({u.collection for u in uploads}):
        check_name(name)
        require_write(principal, name)
    job = jobs.submit(uploads, owner=principal.name)
    wait = 0.0 if len(body) > limits.upload_wait_bytes else limits.upload_wait_seconds
    return await job_answer(jobs, job, wait, "files" if kind == "multipart/form-data" else "documents")


@router.post("/v1/documents/{doc_id}/refresh", status_code=201, responses=REFRESH_RESPONSES)
async def refresh_document(
    doc_id: str,
    runtime: RuntimeDep,
    jobs: IngestionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    collection: str = COLLECTION,
) -> JSONResponse:
    """Fetch a document's URL source again, in a job answered as an upload's: changed text
    replaces its chunks ("replaced"), the same text changes nothing ("unchanged"), and a page
    that cannot be fetched now leaves the document as it was (422). Its title stays."""
    require_write(principal, collection)
    record = await asyncio.to_thread(runtime.index.get, doc_id, collection)
    if record is None:
        raise no_document(doc_id)
    if not is_web_url(record.source):
        message = f"document {doc_id!r} was not fetched from a URL (its source is {record.source or 'empty'!r})"
        raise APIError(400, message, param="doc_id", code="no_url_source")
    refresh = Upload(
        record.source,
        title=record.title,
        doc_id=doc_id,
        collection=collection,
        url=record.source,
        fetcher=url_fetcher(settings),
    )
    job = jobs.submit([refresh], owner=principal.name)
    return await job_answer(jobs, job, settings.server.upload_wait_seconds, "doc_id")


async def job_answer(jobs: IngestionQueue, job: IngestionJob, wait: float, param: str) -> JSONResponse:
    """A submitted job's answer: 201 once done within `wait` seconds, else 202 to poll; 422 when
    no document could be read (each one's reason), 503 when the service stopped during it."""
    if wait <= 0 or not await jobs.wait(job, wait):
        location = {"Location": f"/v1/documents/jobs/{job.id}"}
        return JSONResponse(Job.of(job).model_dump(mode="json"), status_code=202, headers=location)
    if job.status == "interrupted":  # the service is stopping
        failure = JobFailure(
            error=error_body(str(job.error), "server_error", None, "interrupted").error, job=Job.of(job)
        )
        return JSONResponse(failure.model_dump(mode="json"), status_code=503)
    if job.status == "failed":
        error = error_body(job.failure(), "invalid_request_error", param, "unreadable_document").error
        return JSONResponse(JobFailure(error=error, job=Job.of(job)).model_dump(mode="json"), status_code=422)
    return JSONResponse(Job.of(job).model_dump(mode="json"), status_code=201)


@router.get("/v1/documents/jobs/{job_id}", response_model=Job, responses=ERRORS)
async def job_status(job_id: str, jobs: IngestionDep, principal: PrincipalDep) -> Job:
    job = jobs.get(job_id)
    if job is None or not (principal.admin or job.owner == principal.name):
        raise APIError(404, f"no ingestion job {job_id!r}", "not_found_error", param="job_id")
    return Job.of(job)


@router.get("/v1/documents", response_model=DocumentList, responses=ERRORS)
async def list_documents(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10**9),
    collection: list[str] | None = Query(None, description="Only these collections (default: every readable one)."),
) -> DocumentList:
    scope = search_scope(principal, collection)
    records, total = await asyncio.to_thread(runtime.index.page, limit, offset, scope)
    return DocumentList(data=[Document.of(r) for r in records], total=total)


@router.get("/v1/collections", response_model=CollectionList, responses=ERRORS)
async def list_collections(runtime: RuntimeDep, principal: PrincipalDep) -> CollectionList:
    """The collections this key may read, with what they hold (a writable one may be empty)."""
    held = {name: (documents, chunks) for name, documents, chunks in await asyncio.to_thread(runtime.index.collections)}
    names = set(held) if principal.reads_all else set(principal.read)
    names |= {DEFAULT} if principal.may_read(DEFAULT) else set()
    names |= {c for c in principal.write if c != "*" and principal.may_read(c)}
    data = [
        Collection(
            id=name,
            documents=held.get(name, (0, 0))[0],
            chunks=held.get(name, (0, 0))[1],
            writable=principal.may_write(name),
        )
        for name in sorted(names)
    ]
    return CollectionList(data=data)


@router.get("/v1/documents/{doc_id}", response_model=DocumentWithText, responses=ERRORS)
async def get_document(
    doc_id: str, runtime: RuntimeDep, principal: PrincipalDep, collection: str = COLLECTION
) -> DocumentWithText:
    require_read(principal, collection)
    index = runtime.index
    record = await asyncio.to_thread(index.get, doc_id, collection)
    if record is None:
        raise no_document(doc_id)
    text = await asyncio.to_thread(index.text, doc_id, collection)
    return DocumentWithText(**Document.of(record).model_dump(), text=text)


@router.delete("/v1/documents/{doc_id}", response_model=DeletedDocument, responses=ERRORS)
async def delete_document(
    doc_id: str, runtime: RuntimeDep, principal: PrincipalDep, collection: str = COLLECTION
) -> DeletedDocument:
    require_write(principal, collection)
    index = runtime.index
    if not await asyncio.to_thread(index.delete, doc_id, collection):
        raise no_document(doc_id)
    await asyncio.to_thread(index.save)
    return DeletedDocument(id=doc_id, collection=collection)


def no_document(doc_id: str) -> APIError:
    return APIError(404, f"no document {doc_id!r}", "not_found_error", param="doc_id")


def check_name(collection: str) -> str:
    try:
        return check_collection(collection)
    except ValueError as exc:
        raise APIError(400, str(exc), param="collection", code="invalid_collection") from None
