"""What the tools return: a structured object (the tool's output schema) and the same as text,
since an LLM client may read either. The shapes are the HTTP API's own: a search hit as
/v1/search sends it, sources and pauses as a chat completion carries them."""

from __future__ import annotations

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from service.api.responses import PauseRecord, SearchHit, Source


class SearchOutput(BaseModel):
    query: str
    passages: list[SearchHit] = Field(description="Best first: text, title, source, document_id, collection, score.")

    def text(self) -> str:
        if not self.passages:
            return f"No passages found for {self.query!r}."
        blocks = [
            f"[{n}] {p.title or p.source or 'untitled'} ({p.source + '; ' if p.source else ''}"
            f"document {p.document_id!r} in {p.collection!r}, score {p.score:.3f})\n{p.text}"
            for n, p in enumerate(self.passages, start=1)
        ]
        return "\n\n".join(blocks)


class AskOutput(BaseModel):
    answer: str = Field(description="The answer, its citations [n] and a closing source list.")
    finish_reason: str
    sources: list[Source] = Field(description="Every source the answer cites, numbered as its citations are.")
    pauses: list[PauseRecord] = Field(description="Each pause to look something up, in order, with what it found.")

    def text(self) -> str:
        if not self.pauses:
            return self.answer
        searches = "; ".join(f"{p.query!r} ({len(p.sources)} found)" for p in self.pauses)
        return f"{self.answer}\n\n(The model paused to search {len(self.pauses)} time(s): {searches}.)"


class AddedDocument(BaseModel):
    job: str = Field(description="The ingestion job (GET /v1/documents/jobs/{job} over HTTP).")
    status: str = Field(
        description="What became of it (added, unchanged, replaced), or the job's (queued, running) while "
        "other jobs are ahead of it."
    )
    collection: str
    id: str | None = Field(default=None, description="The document's id, once indexed.")
    title: str | None = None
    chunks: int | None = Field(default=None, description="Its chunks in the index.")

    def text(self) -> str:
        if self.id is None:
            return f"Queued as job {self.job} ({self.status}): it will be searchable in {self.collection!r} soon."
        return (
            f"Document {self.id!r} ({self.title or 'untitled'}) {self.status} in collection "
            f"{self.collection!r}: {self.chunks} chunk(s), searchable now."
        )


def tool_result(output: SearchOutput | AskOutput | AddedDocument) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=output.text())],
        structured_content=output.model_dump(mode="json"),
    )
