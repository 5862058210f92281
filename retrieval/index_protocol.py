"""What the service asks of a document index, whichever store holds it.

Two implementations: `document_index.DocumentIndex` (embedded: SQLite, FAISS, bm25s; the
default) and `milvus_index.MilvusIndex` (Milvus: milvus-lite in a file, or a server that
several replicas share). `tests/retrieval/test_index_conformance.py` runs one suite on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from retrieval.embedder import Embedder
from retrieval.ingest_plan import DocumentInput, IngestResult
from retrieval.reembedding import Progress
from retrieval.store import DEFAULT_COLLECTION, DocumentRecord
from retrieval.types import Passage, Searcher

SearchMode = Literal["hybrid", "dense", "lexical"]


@runtime_checkable
class KnowledgeIndex(Protocol):
    """Documents in (deduplicated by content, per collection), passages out (hybrid search).

    Ids are per collection: a document is found, replaced and deleted by (id, collection).
    Records and passages carry the id as the collection's users know it."""

    embedder: Embedder  # the model documents are embedded with (queries too, unless re-embedding)

    def add_documents(self, documents: Iterable[DocumentInput], batch_size: int = 256) -> list[IngestResult]:
        """Index documents; each result is acknowledged only once written."""
        ...

    def add_paths(
        self,
        paths: Iterable[Path],
        progress: Callable[[Path, IngestResult | Exception], None] | None = None,
        batch_size: int = 256,
    ) -> list[IngestResult]: ...

    def get(self, doc_id: str, collection: str = DEFAULT_COLLECTION) -> DocumentRecord | None: ...

    def text(self, doc_id: str, collection: str = DEFAULT_COLLECTION) -> str:
        """The document's text as indexed ("" when there is none)."""
        ...

    def list(self, limit: int = 100, offset: int = 0, collections: list[str] | None = None) -> list[DocumentRecord]:
        """Documents oldest first, of these collections (None: all)."""
        ...

    def count(self, collections: list[str] | None = None) -> int: ...

    def page(self, limit: int, offset: int, collections: list[str] | None) -> tuple[list[DocumentRecord], int]:
        """list() and count() at once: what GET /v1/documents shows (one read where the store
        must read every row for either)."""
        ...

    def collections(self) -> list[tuple[str, int, int]]:
        """(name, documents, chunks) of every collection that holds a document, by name."""
        ...

    def delete(self, doc_id: str, collection: str = DEFAULT_COLLECTION) -> bool: ...

    def save(self) -> None:
        """Make what was added durable where that is not already so (after a batch of writes)."""
        ...

    def close(self) -> None: ...

    def search(
        self, query: str, k: int = 5, mode: SearchMode = "hybrid", collections: list[str] | None = None
    ) -> list[Passage]:
        """The k best passages; only from `collections` when given, in the dense and the
        lexical search alike."""
        ...

    def scoped(self, collections: list[str] | None) -> Searcher:
        """A searcher over these collections only (None: the whole index)."""
        ...

    def stats(self) -> dict[str, int | str]: ...

    def chunk_count(self) -> int:
        """Chunks stored (read when /metrics is scraped)."""
        ...

    def reembedding_progress(self) -> Progress | None:
        """While the index re-embeds for a new embedder, how far it is; None otherwise."""
        ...

    def reembedding_running(self) -> bool:
        """Whether re-embedding shares the cores now: cheap, asked at every generation step."""
        ...


class CollectionSearcher:
    """The index seen through some of its collections: what one API key may search."""

    def __init__(self, index: KnowledgeIndex, collections: list[str]) -> None:
        self.index = index
        self.collections = collections

    def search(self, query: str, k: int = 4) -> list[Passage]:
        return self.index.search(query, k, collections=self.collections)
