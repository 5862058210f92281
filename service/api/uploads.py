"""An upload's body read into documents to index: JSON text or URLs (one or a batch) or
multipart files, within the size and count limits, each checked before anything is queued."""

from __future__ import annotations

import json

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from retrieval.page_fetch import PageFetcher
from retrieval.parsing import UnsupportedDocument, media_type_for
from service.api.errors import APIError
from service.api.requests import DocumentBatch, DocumentText
from service.runtime.ingestion import Upload
from service.settings import Settings

UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/DocumentText"},
                        {"$ref": "#/components/schemas/DocumentBatch"},
                    ]
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


def json_uploads(body: bytes, collection: str, fetcher: PageFetcher) -> list[Upload]:
    """The documents of a JSON upload, each in its own `collection`, else the batch's, else
    `collection`; a document given by `url` is fetched with `fetcher`, in the job."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise APIError(400, "the body is not valid JSON", code="invalid_json") from None
    try:
        if isinstance(payload, dict) and "documents" in payload:
            batch = DocumentBatch.model_validate(payload)
            documents, collection = batch.documents, batch.collection or collection
        else:
            documents = [DocumentText.model_validate(payload)]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or None
        message = first["msg"].removeprefix("Value error, ")
        raise APIError(400, f"{where or 'body'}: {message}", param=where, code="invalid_value") from None
    if len(documents) == 1 and documents[0].text is not None and not documents[0].text.strip():
        raise APIError(400, "the document's text is empty", param="text")
    # Each is read (or fetched) in the job, where one that cannot be fails alone.
    return [
        Upload(
            _printable(d.title or d.source or d.url or d.id or "") or f"document {n + 1}",
            text=d.text,
            title=d.title,
            source=d.source,
            doc_id=d.id,
            collection=d.collection or collection,
            url=d.url,
            fetcher=fetcher if d.url is not None else None,
        )
        for n, d in enumerate(documents)
    ]


def url_fetcher(settings: Settings) -> PageFetcher:
    """The guard URL documents are fetched through: the limits and allow-list web pages have."""
    retrieval = settings.retrieval
    return PageFetcher(
        max_bytes=retrieval.web_fetch_max_bytes,
        timeout_s=retrieval.web_fetch_timeout_s,
        allowed_networks=tuple(retrieval.web_fetch_allowed_networks),
    )


def _printable(name: str) -> str:
    """A name for the job's results that JSON can carry (a bad title still names its document)."""
    return name.encode("utf-8", errors="replace").decode("utf-8")


async def file_uploads(request: Request, body: bytes, max_files: int, collection: str) -> list[Upload]:
    """The files of a multipart upload, in the form's `collection` field, else `collection`."""
    request._body = body  # already read within the limit: let Starlette parse it from memory
    try:
        form = await request.form(max_files=max_files, max_fields=max_files + 1)
    except Exception as exc:  # malformed multipart, or too many parts
        if "Too many files" in str(exc):
            raise APIError(
                413, f"more than {max_files} files in one upload", param="files", code="too_many_documents"
            ) from None
        raise APIError(400, f"the multipart body could not be read: {exc}", code="invalid_multipart") from None
    files = [v for v in form.getlist("files") + form.getlist("file") if isinstance(v, UploadFile)]
    if not files:
        raise APIError(400, "attach documents as multipart fields named 'files'", param="files")
    named = form.get("collection")
    collection = named if isinstance(named, str) and named else collection
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
        uploads.append(Upload(f.filename or "upload", data=data, media_type=declared, collection=collection))
    return uploads
