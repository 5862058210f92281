"""The document index on Milvus: documents, chunks, vectors and BM25 all in Milvus.

The same contract as the embedded DocumentIndex (retrieval/index_protocol.py), so that several
replicas can share one index on a Milvus server; milvus-lite (a local `.db` path, served by
pymilvus in this process) runs the same code in tests. Ingestion decisions (ids, dedup by
content hash, titles) come from retrieval/ingest_plan.py, fusion from retrieval/fusion.py.

Milvus has no transaction across rows, so a document's row is its commit point: it names the
version of its chunks that is current, and search, text and counts read only those. A write
inserts the new chunks under a new version, then upserts the document rows, then deletes the
chunks they replaced; a delete removes the row, then its chunks. A crash between two steps
leaves chunks no row points to: never shown, and removed when that document is written or
deleted again. Milvus's own log makes each step durable (milvus-lite: its write-ahead log,
flushed to the OS at every write, so a killed process loses nothing acknowledged).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import MilvusClient

from retrieval import ingest_plan
from retrieval.chunking import join_chunks
from retrieval.embedder import Embedder
from retrieval.embedder_spec import EmbedderSpec, spec_of
from retrieval.fusion import DENSE_WEIGHT, score_fusion
from retrieval.index_protocol import CollectionSearcher, SearchMode
from retrieval.ingest_plan import (
    COLLECTION_NAME,
    BatchPlan,
    DocumentInput,
    IngestResult,
    identify,
    in_batches,
    plan_batch,
    stored_id,
)
from retrieval.milvus_schema import (
    EMBEDDER_PROPERTY,
    PLACEHOLDER_DIM,
    TEXT_BYTES,
    create_chunks,
    create_documents,
    document_key,
    literal,
    one_of,
)
from retrieval.reembedding import Progress
from retrieval.store import DEFAULT_COLLECTION, DocumentRecord
from retrieval.types import Passage, Searcher

log = logging.getLogger(__name__)
SERVER_SCHEMES = ("http://", "https://", "tcp://", "unix:")
_DOCUMENT_FIELDS = [
    "key",
    "doc_id",
    "collection",
    "content_hash",
    "title",
    "source",
    "media_type",
    "n_chars",
    "n_chunks",
    "created_at",
    "updated_at",
    "version",
]
_PASSAGE_FIELDS = ["doc_id", "collection", "title", "source", "text", "char_start", "char_end", "vector"]
_ROWS_PER_CALL = 512  # inserts and upserts are cut so that no message nears gRPC's size limit


def is_local(uri: str) -> bool:
    """A file path (milvus-lite, in this process) rather than a server's address."""
    return not uri.startswith(SERVER_SCHEMES)


class MilvusIndex:
    def __init__(
        self,
        uri: str,
        embedder: Embedder,
        *,
        token: str | None = None,
        prefix: str = "ragpause",
        chunk_words: int = 150,
        dense_weight: float = DENSE_WEIGHT,
    ) -> None:
        """`uri`: a `.db` file for milvus-lite, or http(s)://host:19530 for a server (with
        `token` when it needs one). `prefix` names the two Milvus collections used."""
        self.uri = uri
        self.embedder = embedder
        self.chunk_words = chunk_words
        self.dense_weight = dense_weight  # the dense share of the fused score, as in DocumentIndex
        self._spec = spec_of(embedder)
        self._local = is_local(uri)
        if self._local:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
            _quiet_lite_iterators()
        self.client = MilvusClient(uri, token=token or "")
        self._documents, self._chunks = f"{prefix}_documents", f"{prefix}_chunks"
        self._write_lock = threading.Lock()  # this process's writes, one at a time
        self._closed = False
        self._open_tables()

    def _open_tables(self) -> None:
        """Create what is missing; refuse vectors of another embedder (no re-embedding here yet)."""
        client, record = self.client, self._spec.to_json()
        if client.has_collection(self._chunks):
            properties = client.describe_collection(self._chunks).get("properties", {})
            recorded = properties.get(EMBEDDER_PROPERTY)
            if recorded and not EmbedderSpec.parse(recorded).same_vectors(self._spec):
                if self._count(self._chunks) > 0:
                    raise RuntimeError(
                        f"the Milvus index at {self.uri} holds vectors of {EmbedderSpec.parse(recorded).label}, "
                        f"not {self._spec.label}: re-embedding on Milvus is not supported yet; start with that "
                        "embedder, or give the index another RAGPAUSE_MILVUS_URI"
                    )
                client.drop_collection(self._chunks)  # empty: made again for this embedder
        if not client.has_collection(self._documents):
            create_documents(client, self._documents)
        if not client.has_collection(self._chunks):
            create_chunks(client, self._chunks, self.embedder.dim, record)
        for name in (self._documents, self._chunks):
            client.load_collection(name)

    # --- writes --------------------------------------------------------------------------
    def add_documents(self, documents: Iterable[DocumentInput], batch_size: int = 256) -> list[IngestResult]:
        """Index documents, a batch at a time: each batch is embedded in one pass, and its
        results returned once its rows are written. Same rules as DocumentIndex (ingest_plan)."""
        return in_batches(documents, batch_size, self._add_batch)

    def _add_batch(self, documents: list[DocumentInput]) -> list[IngestResult]:
        items = identify(documents)
        with self._write_lock:
            keys = [document_key(i.collection, i.doc_id) for i in items]
            known = {r["key"]: r for r in self._query(self._documents, one_of("key", keys), _DOCUMENT_FIELDS)}
            by_id = {key: _record(row) for key, row in known.items()}
            # Content already held under another id: the oldest such document of its collection.
            digests = sorted({i.digest for i in items if i.document.doc_id is None})
            held = self._query(self._documents, one_of("content_hash", digests), _DOCUMENT_FIELDS) if digests else []
            same: dict[tuple[str, str], DocumentRecord] = {}
            for row in sorted(held, key=lambda r: (r["created_at"], r["key"])):
                same.setdefault((row["collection"], row["content_hash"]), _record(row))
            plan = plan_batch(
                items,
                lambda i: by_id.get(document_key(i.collection, i.doc_id)),
                lambda digest, collection: same.get((collection, digest)),
                self.chunk_words,
            )
            if plan.writes:
                self._write(plan, self.embedder.encode(plan.texts()), known)
        return plan.done()

    def _write(self, plan: BatchPlan, vectors: np.ndarray, known: dict[str, dict]) -> None:
        """New chunks, then the rows that make them current, then the chunks they replace."""
        chunk_rows, document_rows = _rows(plan, vectors, known)
        _check_sizes(chunk_rows)
        keys = [r["key"] for r in document_rows]
        replaced = [r["id"] for r in self._scan(self._chunks, one_of("doc_key", keys), ["id"])]
        inserted: list[int] = []
        for start in range(0, len(chunk_rows), _ROWS_PER_CALL):
            inserted.extend(self.client.insert(self._chunks, chunk_rows[start : start + _ROWS_PER_CALL])["ids"])
        for start in range(0, len(document_rows), _ROWS_PER_CALL):
            self.client.upsert(self._documents, document_rows[start : start + _ROWS_PER_CALL])
        # One id written twice in the batch: its first write's chunks were never current.
        current = {(r["key"], r["version"]) for r in document_rows}
        superseded = [i for i, c in zip(inserted, chunk_rows) if (c["doc_key"], c["version"]) not in current]
        self._delete_chunks(replaced + superseded)

    def _delete_chunks(self, ids: list[int]) -> None:
        for start in range(0, len(ids), _ROWS_PER_CALL):
            self.client.delete(self._chunks, ids=ids[start : start + _ROWS_PER_CALL])

    def add_paths(
        self,
        paths: Iterable[Path],
        progress: Callable[[Path, IngestResult | Exception], None] | None = None,
        batch_size: int = 256,
    ) -> list[IngestResult]:
        """Index files and folders (recursively, supported types only), in batches. Files that
        cannot be read are reported to `progress` and skipped."""
        return ingest_plan.add_paths(self.add_documents, paths, progress, batch_size)

    def delete(self, doc_id: str, collection: str = DEFAULT_COLLECTION) -> bool:
        """Remove a document (its row first: its chunks are hidden from then on) and its chunks."""
        key = document_key(collection, doc_id)
        with self._write_lock:
            if self._row(key) is None:
                return False
            self.client.delete(self._documents, filter=f"key == {literal(key)}")
            self.client.delete(self._chunks, filter=f"doc_key == {literal(key)}")
        return True

    def save(self) -> None:
        """Seal what was written (every write is already durable in Milvus's log): rows in
        growing segments are searched without their index, which on milvus-lite took 310 ms a
        search over 10k chunks against 8 ms once flushed (bench/search.py). The ingestion job
        calls this after each upload, as it writes the FAISS file on the embedded store."""
        with self._write_lock:
            for name in (self._chunks, self._documents):
                self.client.flush(name)

    def close(self) -> None:
        """Disconnect; milvus-lite's in-process server for the file stops too (it holds the file's lock)."""
        if self._closed:
            return
        self._closed = True
        self.client.close()
        if self._local:
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self.uri)

    # --- reads ---------------------------------------------------------------------------
    def get(self, doc_id: str, collection: str = DEFAULT_COLLECTION) -> DocumentRecord | None:
        row = self._row(document_key(collection, doc_id))
        return _record(row) if row is not None else None

    def text(self, doc_id: str, collection: str = DEFAULT_COLLECTION) -> str:
        """The document's text as indexed (its chunks joined without their overlap)."""
        row = self._row(document_key(collection, doc_id))
        if row is None:
            return ""
        where = f"doc_key == {literal(row['key'])} and version == {int(row['version'])}"
        chunks = sorted(self._scan(self._chunks, where, ["seq", "text", "char_start", "char_end"]), key=_seq)
        return join_chunks((c["text"], c["char_start"], c["char_end"]) for c in chunks)

    def list(self, limit: int = 100, offset: int = 0, collections: list[str] | None = None) -> list[DocumentRecord]:
        """Documents oldest first (ties in the order DocumentIndex gives), of these collections
        (None: all). Milvus cannot sort a query, so every matching row is read."""
        where = _in_collections(collections)
        if where is None:
            return []
        records = [_record(r) for r in self._scan(self._documents, where, _DOCUMENT_FIELDS)]
        records.sort(key=lambda r: (r.created_at, stored_id(r.collection, r.id)))
        return records[offset : offset + limit]

    def count(self, collections: list[str] | None = None) -> int:
        where = _in_collections(collections)
        return 0 if where is None else self._count(self._documents, where)

    def collections(self) -> list[tuple[str, int, int]]:
        """(name, documents, chunks) of every collection that holds a document."""
        held: dict[str, tuple[int, int]] = {}
        for row in self._scan(self._documents, "", ["collection", "n_chunks"]):
            documents, chunks = held.get(row["collection"], (0, 0))
            held[row["collection"]] = (documents + 1, chunks + int(row["n_chunks"]))
        return [(name, *held[name]) for name in sorted(held)]

    def scoped(self, collections: list[str] | None) -> Searcher:
        """A searcher over these collections only (None: the whole index)."""
        return self if collections is None else CollectionSearcher(self, collections)

    def chunk_count(self) -> int:
        """Chunk rows, those a crash left behind included until they are removed."""
        return self._count(self._chunks)

    def stats(self) -> dict[str, int | str]:
        chunks = self.chunk_count()
        return {
            "documents": self.count(),
            "chunks": chunks,
            "vectors": chunks,
            "index_kind": "milvus-lite" if self._local else "milvus",
            "embedder": self._spec.label,
        }

    def reembedding_progress(self) -> Progress | None:
        """Always None: re-embedding is not supported on Milvus yet (another embedder is refused at start)."""
        return None

    def reembedding_running(self) -> bool:
        return False

    def search(
        self, query: str, k: int = 5, mode: SearchMode = "hybrid", collections: list[str] | None = None
    ) -> list[Passage]:
        """The k best passages for the query, fused as DocumentIndex fuses them; from these
        collections only when given (a filter on both the dense and the BM25 search)."""
        query = query.strip()
        where = _in_collections(collections)
        if not query or where is None:
            return []
        depth = max(50, 4 * k)
        query_vector = self.embedder.encode([query])[0]
        dense: list[tuple[int, float, dict]] = []
        lexical: list[tuple[int, float, dict]] = []
        if mode in ("hybrid", "dense"):
            dense = self._hits(query_vector.tolist(), "vector", "IP", depth, where)
        if mode in ("hybrid", "lexical"):
            # BM25 scores are positive; milvus-lite reports them negated, as distances.
            lexical = [(i, abs(s), e) for i, s, e in self._hits(query, "sparse", "BM25", depth, where)]
        dense, lexical = self._current(dense), self._current(lexical)
        if mode == "hybrid":
            ranked = score_fusion([dense, lexical], weights=[self.dense_weight, 1.0 - self.dense_weight])[:k]
        else:
            ranked = (dense or lexical)[:k]
        return self._passages(ranked, query_vector)

    def _hits(self, data: Any, field: str, metric: str, depth: int, where: str) -> list[tuple[int, float, dict]]:
        found = self.client.search(
            self._chunks,
            data=[data],
            anns_field=field,
            limit=depth,
            filter=where,
            output_fields=["doc_key", "version"],
            search_params={"metric_type": metric},
        )
        return [(int(h["id"]), float(h["distance"]), h["entity"]) for h in found[0]]

    def _current(self, hits: list[tuple[int, float, dict]]) -> list[tuple[int, float]]:
        """The hits whose chunks their document's row names (a write or delete in progress, or
        cut short by a crash, leaves others for a moment or until that document is written again)."""
        keys = sorted({e["doc_key"] for _, _, e in hits})
        if not keys:
            return []
        versions = {r["key"]: r["version"] for r in self._query(self._documents, one_of("key", keys), ["version"])}
        return [(i, s) for i, s, e in hits if versions.get(e["doc_key"]) == e["version"]]

    def _passages(self, ranked: list[tuple[int, float]], query_vector: np.ndarray) -> list[Passage]:
        if not ranked:
            return []
        found = self.client.get(self._chunks, ids=[i for i, _ in ranked], output_fields=_PASSAGE_FIELDS)
        rows = {int(r["id"]): r for r in found}
        return [
            Passage(
                text=r["text"],
                source=r["source"],
                title=r["title"],
                score=score,
                doc_id=r["doc_id"],
                chunk_id=i,
                similarity=float(np.asarray(r["vector"], np.float32) @ query_vector),
                start=int(r["char_start"]),
                end=int(r["char_end"]),
                collection=r["collection"],
            )
            for i, score in ranked
            if (r := rows.get(i)) is not None
        ]

    # --- Milvus helpers --------------------------------------------------------------------
    def _row(self, key: str) -> dict | None:
        rows = self._query(self._documents, f"key == {literal(key)}", _DOCUMENT_FIELDS)
        return rows[0] if rows else None

    def _query(self, table: str, where: str, fields: list[str]) -> list[dict]:
        """Rows matching a filter that bounds them (keys of one batch): one call."""
        return list(self.client.query(table, filter=where, output_fields=fields))

    def _scan(self, table: str, where: str, fields: list[str]) -> Iterator[dict]:
        """Every row matching a filter, however many, in pages."""
        pages = self.client.query_iterator(table, batch_size=1000, filter=where, output_fields=fields)
        try:
            while page := pages.next():
                yield from page
        finally:
            pages.close()

    def _count(self, table: str, where: str = "") -> int:
        return int(self.client.query(table, filter=where, output_fields=["count(*)"])[0]["count(*)"])


def _in_collections(collections: list[str] | None) -> str | None:
    """A filter for these collections: "" for all, None when none of them can hold a document
    (names that are not collection names never reach a filter)."""
    if collections is None:
        return ""
    names = sorted({c for c in collections if COLLECTION_NAME.match(c)})
    return one_of("collection", names) if names else None


def _rows(plan: BatchPlan, vectors: np.ndarray, known: dict[str, dict]) -> tuple[list[dict], list[dict]]:
    """The batch's chunk rows and document rows (one per key: a later write of an id wins), each
    write under a version of its own; fills the plan's results."""
    now, base = time.time(), time.time_ns()
    chunk_rows: list[dict] = []
    documents: dict[str, dict] = {}
    vector = iter(vectors)
    for n, planned in enumerate(plan.writes):
        item, document, version = planned.item, planned.item.document, base + n
        key = document_key(item.collection, item.doc_id)
        # What a passage shows of its document is kept on each chunk too.
        shared = dict(doc_id=item.doc_id, collection=item.collection, title=planned.title, source=document.source)
        for seq, chunk in enumerate(planned.chunks):
            chunk_rows.append(
                {
                    **shared,
                    "doc_key": key,
                    "version": version,
                    "seq": seq,
                    "char_start": chunk.start,
                    "char_end": chunk.end,
                    "text": chunk.text,
                    "vector": next(vector),
                }
            )
        previous = known.get(key)
        documents[key] = {
            **shared,
            "key": key,
            "content_hash": item.digest,
            "media_type": document.media_type,
            "n_chars": len(document.text.strip()),
            "n_chunks": len(planned.chunks),
            "created_at": previous["created_at"] if previous else now,
            "updated_at": now,
            "titled": bool(document.title),
            "version": version,
            "placeholder": [0.0] * PLACEHOLDER_DIM,
        }
        status = "replaced" if planned.replaces else "added"
        plan.results[planned.slot] = IngestResult(item.doc_id, status, planned.title, len(planned.chunks))
    return chunk_rows, list(documents.values())


def _record(row: dict) -> DocumentRecord:
    return DocumentRecord(
        id=row["doc_id"],
        content_hash=row["content_hash"],
        title=row["title"],
        source=row["source"],
        media_type=row["media_type"],
        n_chars=int(row["n_chars"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        collection=row["collection"],
        n_chunks=int(row["n_chunks"]),
    )


def _seq(row: dict) -> int:
    return int(row["seq"])


def _check_sizes(rows: list[dict]) -> None:
    """Refuse a batch before any of it is written when a field would not fit Milvus's VARCHAR."""
    for row in rows:
        for field in ("text", "title", "source", "doc_id"):
            if len(row[field].encode("utf-8")) > TEXT_BYTES:
                raise ValueError(
                    f"{row['doc_id']!r}: a chunk's {field} is longer than Milvus's {TEXT_BYTES} bytes "
                    "(a run of text without spaces?)"
                )


class _NoSessionTimestamp(logging.Filter):
    """milvus-lite gives iterators no session timestamp; pymilvus then uses its own clock (fine
    in one process) and warns at every scan."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to get mvccTs" not in record.getMessage()


def _quiet_lite_iterators() -> None:
    logger = logging.getLogger("pymilvus.client.iterator.query_iterator")
    if not any(isinstance(f, _NoSessionTimestamp) for f in logger.filters):
        logger.addFilter(_NoSessionTimestamp())
