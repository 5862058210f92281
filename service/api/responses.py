"""Every response body the API sends, as pydantic models: `/openapi.json` documents them, and
the OpenAI-compatible objects are built from them.

Our additions to OpenAI's objects (`draft`, `pause`, `evidence`, `resume`, `sources`, `answer`
on a stream chunk) are left out when they do not apply, so that a client that does not know
them sees OpenAI's shapes; fields that OpenAI sends as `null` stay `null`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from retrieval.reembedding import Progress
from retrieval.store import DocumentRecord
from retrieval.types import Passage
from service.answer.citations import source_name
from service.runtime.ingestion import IngestionJob


def _absent_when_none(value: Any) -> bool:
    return value is None


def extra(description: str) -> Any:
    """An optional field of ours, left out of the body when it has no value."""
    return Field(default=None, description=description, exclude_if=_absent_when_none)


# --- errors ---------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope: every 4xx and 5xx has this body."""

    error: ErrorDetail


# --- chat -----------------------------------------------------------------------------------
class Source(BaseModel):
    """A passage an answer drew on; `id` is the number its citations `[n]` use. A local passage
    also says where it lies: its document (GET /v1/documents/{document_id}?collection=…) and
    its character offsets there, so a reader can check it in context."""

    id: int
    title: str
    source: str
    name: str = Field(description="What identifies it, as the answer's source list names it.")
    score: float
    text: str
    document_id: str | None = extra("The local document it is part of (web results have none).")
    collection: str | None = extra("That document's collection.")
    start: int | None = extra("Where the passage starts in the document's text.")
    end: int | None = extra("Where it ends.")

    @classmethod
    def of(cls, passage: Passage, number: int) -> Source:
        local = bool(passage.doc_id)
        return cls(
            id=number,
            title=passage.title,
            source=passage.source,
            name=source_name(passage),
            score=round(passage.score, 4),
            text=passage.text,
            document_id=passage.doc_id if local else None,
            collection=passage.collection if local else None,
            start=passage.start if local else None,
            end=passage.end if local else None,
        )


class PauseNotice(BaseModel):
    """The model stopped to look something up; `retracted` is the draft it took back."""

    reason: str
    query: str
    retracted: str


class PauseRecord(PauseNotice):
    """A pause with what its search gave: the sources shown to the model, or why none."""

    sources: list[Source] = Field(default_factory=list)
    error: str | None = None


class EvidenceNotice(BaseModel):
    query: str
    sources: list[Source]
    error: str | None


class ResumeNotice(BaseModel):
    kept_tokens: int
    evidence_tokens: int


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    evaluated_tokens: int = Field(
        description="Tokens the model computed: the prompt's uncached part, answer and evidence."
    )
    cached_tokens: int = Field(description="Prompt tokens reused from a slot's KV cache.")
    searches: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    sources: list[Source] = Field(description="Every source the answer cites, numbered as its citations are.")
    pauses: list[PauseRecord] = Field(description="Each pause to look something up, in order.")


class Delta(BaseModel):
    role: Literal["assistant"] | None = Field(default=None, exclude_if=_absent_when_none)
    content: str | None = Field(default=None, exclude_if=_absent_when_none)


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed answer."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    draft: str | None = extra("Every token's text as written, before any pause can take it back.")
    pause: PauseNotice | None = extra("The model stopped here to look something up.")
    evidence: EvidenceNotice | None = extra("What the pause's search gave.")
    resume: ResumeNotice | None = extra("Decoding goes on after the evidence.")
    sources: list[Source] | None = extra("On the last chunk: every source cited.")
    answer: str | None = extra("On the last chunk: the whole answer as `content` carried it.")
    usage: Usage | None = extra("On the usage chunk (stream_options.include_usage).")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "ragpause"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# --- documents ------------------------------------------------------------------------------
class Document(BaseModel):
    id: str
    object: Literal["document"] = "document"
    collection: str
    title: str
    source: str
    media_type: str
    characters: int
    chunks: int
    created_at: float
    updated_at: float

    @classmethod
    def of(cls, record: DocumentRecord) -> Document:
        return cls(
            id=record.id,
            collection=record.collection,
            title=record.title,
            source=record.source,
            media_type=record.media_type,
            characters=record.n_chars,
            chunks=record.n_chunks,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class DocumentWithText(Document):
    text: str


class DocumentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Document]
    total: int


class DeletedDocument(BaseModel):
    id: str
    object: Literal["document"] = "document"
    collection: str
    deleted: bool = True


class Collection(BaseModel):
    id: str
    object: Literal["collection"] = "collection"
    documents: int
    chunks: int
    writable: bool = Field(description="Whether this key may upload to it and delete from it.")


class CollectionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Collection]


class JobProgress(BaseModel):
    done: int
    total: int


class JobResult(BaseModel):
    """What became of one uploaded document: added, unchanged, replaced, or failed (and why)."""

    name: str
    status: str
    collection: str | None = extra("The collection it went to.")
    id: str | None = extra("The document's id, once indexed.")
    title: str | None = extra("Its title.")
    chunks: int | None = extra("Its chunks in the index.")
    error: str | None = extra("Why it could not be read.")


class Job(BaseModel):
    """An ingestion job: uploads are indexed in the background, in order."""

    id: str
    object: Literal["ingestion_job"] = "ingestion_job"
    status: Literal["queued", "running", "done", "failed", "interrupted"]
    progress: JobProgress
    created_at: float
    finished_at: float | None
    results: list[JobResult]
    error: str | None

    @classmethod
    def of(cls, job: IngestionJob) -> Job:
        return cls(
            id=job.id,
            status=job.status,
            progress=JobProgress(done=job.done, total=job.total),
            created_at=job.created_at,
            finished_at=job.finished_at,
            results=[JobResult.model_validate(r) for r in job.results],
            error=job.error,
        )


class JobFailure(ErrorResponse):
    """An upload whose job failed (422) or was interrupted (503): the error, and the job."""

    job: Job


class SearchHit(BaseModel):
    document_id: str
    collection: str
    title: str
    source: str
    text: str
    score: float
    similarity: float | None
    start: int
    end: int

    @classmethod
    def of(cls, passage: Passage) -> SearchHit:
        return cls(
            document_id=passage.doc_id,
            collection=passage.collection,
            title=passage.title,
            source=passage.source,
            text=passage.text,
            score=passage.score,
            similarity=passage.similarity,
            start=passage.start,
            end=passage.end,
        )


class SearchResults(BaseModel):
    object: Literal["list"] = "list"
    query: str
    data: list[SearchHit]


# --- service --------------------------------------------------------------------------------
class Reembedding(BaseModel):
    """The index is re-embedding its chunks for a new embedder: search uses the old one's
    vectors until `done` reaches `total` (retrieval/reembedding.py)."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    done: int = Field(description="Chunks that have their new vector.")
    total: int = Field(description="Chunks in the index.")
    from_: str = Field(alias="from", description="The embedder search uses until the switch.")
    to: str = Field(description="The embedder being switched to.")
    dense: bool = Field(description="False when the old embedder could not be loaded: search is lexical only.")
    error: str | None = extra("Why the re-embedding stopped; it resumes at the next start.")

    @classmethod
    def of(cls, progress: Progress | None) -> Reembedding | None:
        """The index's progress as /health shows it; None when no re-embedding runs."""
        if progress is None:
            return None
        return cls(
            done=progress.done,
            total=progress.total,
            from_=progress.source,
            to=progress.target,
            dense=progress.dense,
            error=progress.error,
        )


class Health(BaseModel):
    """`ok` with the queues' lengths; `loading` or `error` (with why) answer 503."""

    status: Literal["ok", "loading", "error"]
    generating: int | None = extra("Answers holding a generation slot.")
    queued: int | None = extra("Answers waiting for a slot.")
    ingestion_queued: int | None = extra("Ingestion jobs waiting.")
    reembedding: Reembedding | None = extra("Present while the index re-embeds for a new embedder.")
    error: str | None = extra("Why loading failed.")


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (400, "invalid request"),
        (401, "missing or wrong API key"),
        (403, "this key may read the collection but not change it"),
        (404, "not found (or not readable with this key)"),
        (503, "still loading"),
    )
}
