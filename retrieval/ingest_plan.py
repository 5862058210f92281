"""What an index is given, and how a batch of it is sorted out before anything is written.

Both indexes (document_index.py: SQLite and FAISS; milvus_index.py: Milvus) decide here which
documents are new, unchanged, duplicates or replacements, under which ids, and what each chunk
embeds: written once, so that dedup and ids mean the same whichever index holds the documents.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from retrieval.chunking import Chunk, chunk_text
from retrieval.parsing import SUPPORTED, parse_document
from retrieval.store import DEFAULT_COLLECTION, DocumentRecord

IngestStatus = Literal["added", "replaced", "unchanged", "duplicate"]
COLLECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class IngestResult:
    doc_id: str
    status: IngestStatus
    title: str
    n_chunks: int


@dataclass(frozen=True, slots=True)
class DocumentInput:
    text: str
    title: str = ""
    source: str = ""
    doc_id: str | None = None
    media_type: str = "text/plain"
    collection: str = DEFAULT_COLLECTION


def content_hash(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def check_collection(name: str) -> str:
    """A collection's name as given, or ValueError: lowercase letters, digits, '-' and '_'."""
    if not COLLECTION_NAME.match(name):
        raise ValueError(f"{name!r} is not a collection name: 1 to 64 of a-z, 0-9, '-' and '_', starting alphanumeric")
    return name


def stored_id(collection: str, doc_id: str) -> str:
    """The store's key for a document: its id, scoped by its collection. Collections keep their
    ids apart (two teams may both upload "handbook"); the default collection's documents keep
    their plain ids, as stores from before collections have them."""
    return doc_id if collection == DEFAULT_COLLECTION else f"{collection}/{doc_id}"


def public_id(record_id: str, collection: str) -> str:
    """A document's id as its collection's users know it (the store's key without its scope)."""
    return record_id if collection == DEFAULT_COLLECTION else record_id.split("/", 1)[1]


@dataclass(frozen=True, slots=True)
class Identified:
    """A document with its text checked, its content hash and the id it goes under."""

    document: DocumentInput
    digest: str
    collection: str
    doc_id: str


def identify(documents: Iterable[DocumentInput]) -> list[Identified]:
    """Each document's hash, collection and id (given, else from its source or content);
    ValueError for one without text or with a bad collection name, before anything is written."""
    out = []
    for document in documents:
        text = document.text.strip()
        if not text:
            raise ValueError("the document has no text")
        digest = content_hash(text)
        collection = check_collection(document.collection)
        doc_id = document.doc_id or hashlib.sha256((document.source or digest).encode()).hexdigest()[:16]
        out.append(Identified(document, digest, collection, doc_id))
    return out


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """A document to write: new, or replacing the one under its id."""

    slot: int  # its place in the batch's results
    item: Identified
    replaces: bool
    chunks: list[Chunk]

    @property
    def title(self) -> str:
        """The given title, else the first line (shown, but not embedded twice)."""
        document = self.item.document
        return document.title or document.text.strip().splitlines()[0][:80]

    def embedding_texts(self) -> list[str]:
        """A given title is embedded with each chunk: chunks far into a document still say
        what it is about."""
        title = self.item.document.title
        return [f"{title}\n{c.text}" if title else c.text for c in self.chunks]


@dataclass(slots=True)
class BatchPlan:
    results: list[IngestResult | None]  # None: a planned write's slot, filled once it commits
    writes: list[PlannedWrite]

    def texts(self) -> list[str]:
        return [t for w in self.writes for t in w.embedding_texts()]

    def done(self) -> list[IngestResult]:
        return [r for r in self.results if r is not None]


def plan_batch(
    items: list[Identified],
    existing: Callable[[Identified], DocumentRecord | None],
    same_content: Callable[[str, str], DocumentRecord | None],
    chunk_words: int,
) -> BatchPlan:
    """Sort a batch out against what the index holds: `existing` finds the document under an
    item's id, `same_content(digest, collection)` one with that content (its id public).

    Same id and same content: unchanged. Same content under a new id: a duplicate of the
    existing document, unless the caller named the id (a later GET or DELETE of that id must
    find it). Changed content: a replacement. Collections never share documents."""
    plan = BatchPlan([], [])
    claimed: dict[tuple[str, str], str] = {}  # (collection, content hash) -> doc id, within this batch
    for item in items:
        found = existing(item)
        if found is not None and found.content_hash == item.digest:
            plan.results.append(IngestResult(item.doc_id, "unchanged", found.title, found.n_chunks))
            continue
        if found is None and item.document.doc_id is None:
            same = same_content(item.digest, item.collection)
            if same is not None:
                plan.results.append(IngestResult(same.id, "duplicate", same.title, same.n_chunks))
                continue
            if (item.collection, item.digest) in claimed:
                claimed_id = claimed[item.collection, item.digest]
                plan.results.append(IngestResult(claimed_id, "duplicate", item.document.title, 0))
                continue
        claimed[item.collection, item.digest] = item.doc_id
        text = item.document.text.strip()
        chunks = chunk_text(text, target_words=chunk_words, max_words=int(chunk_words * 4 / 3))
        plan.writes.append(PlannedWrite(len(plan.results), item, found is not None, chunks))
        plan.results.append(None)
    return plan


def in_batches(
    documents: Iterable[DocumentInput],
    batch_size: int,
    add_batch: Callable[[list[DocumentInput]], list[IngestResult]],
) -> list[IngestResult]:
    """Hand the documents to `add_batch` `batch_size` at a time (each batch is embedded in one
    pass and written as one); every result, in order."""
    results: list[IngestResult] = []
    batch: list[DocumentInput] = []
    for document in documents:
        batch.append(document)
        if len(batch) >= batch_size:
            results.extend(add_batch(batch))
            batch = []
    if batch:
        results.extend(add_batch(batch))
    return results


def read_document(
    data: bytes,
    filename: str | None = None,
    media_type: str | None = None,
    *,
    source: str = "",
    doc_id: str | None = None,
) -> DocumentInput:
    """Parse uploaded bytes into a document ready to index; ValueError if unreadable or empty."""
    parsed = parse_document(data, filename, media_type)
    if not parsed.text.strip():
        raise ValueError(f"{filename or 'the document'} has no text")
    return DocumentInput(parsed.text, parsed.title, source or filename or "", doc_id, parsed.media_type)


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED))
        else:
            out.append(path)
    return out


def add_paths(
    add_documents: Callable[[list[DocumentInput], int], list[IngestResult]],
    paths: Iterable[Path],
    progress: Callable[[Path, IngestResult | Exception], None] | None,
    batch_size: int,
) -> list[IngestResult]:
    """Read files and folders (recursively, supported types only) and index them in batches
    through `add_documents`; a file that cannot be read is reported to `progress` and skipped."""
    results: list[IngestResult] = []
    files = expand_paths(paths)
    for start in range(0, len(files), batch_size):
        batch, names = [], []
        for path in files[start : start + batch_size]:
            try:
                batch.append(read_document(path.read_bytes(), path.name, source=str(path)))
                names.append(path)
            except (ValueError, OSError) as exc:
                if progress:
                    progress(path, exc)
        done = add_documents(batch, batch_size)
        results.extend(done)
        if progress:
            for path, result in zip(names, done):
                progress(path, result)
    return results
