"""The document index on Milvus: documents, chunks, vectors and BM25 all in Milvus.

The same contract as the embedded DocumentIndex (retrieval/index_protocol.py), so that several
replicas can share one index on a Milvus server; milvus-lite (a local `.db` path, served by
pymilvus in this process) runs the same code in tests. Ingestion decisions (ids, dedup by
content hash, titles) come from retrieval/ingest_plan.py, fusion from retrieval/fusion.py.

Milvus has no transaction across rows and no compare-and-set, and replicas share it, so writes
never overwrite: each write of a document is a new version, and a document is its newest version.
A write inserts its chunks under its version, then its version's row (the commit point: its
chunks are all there before it), then removes every older version's rows and chunks; a delete is
a version too, a tombstone, then the same removal. Only rows and chunks older than a committed
version are ever removed, so the newest version is never touched and its chunks are complete,
whatever two replicas' steps interleave (tests/retrieval/test_milvus_races.py runs every
interleaving of two writers, and of a writer and a delete). Versions are microseconds and a
per-process tag, and always newer than the newest one the writer saw: a write that starts after
another one ended wins even across clocks that disagree. What a crash between steps leaves (chunks
or rows of an older version) is never shown, and goes when that document is next written or
deleted. Milvus's own log makes each step durable (milvus-lite: its write-ahead log, flushed to
the OS at every write, so a killed process loses nothing acknowledged).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import MilvusClient

from retrieval import ingest_plan
from retrieval.chunking import join_chunks
from retrieval.embedder import Embedder
from retrieval.embedder_spec import EmbedderSpec, spec_of
from retrieval.fusion import Fusion, adaptive_fusion
from retrieval.index_protocol import CollectionSearcher, SearchMode
from retrieval.ingest_plan import (
    COLLECTION_NAME,
    BatchPlan,
    DocumentInput,
    Identified,
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
    create_versions,
    document_key,
    literal,
    one_of,
    version_row,
)
from retrieval.reembedding import Progress
from retrieval.store import DEFAULT_COLLECTION, DocumentRecord
from retrieval.types import Passage, Searcher

log = logging.getLogger(__name__)
SERVER_SCHEMES = ("http://", "https://", "tcp://", "unix:")
_DOCUMENT_FIELDS = [
    "row",
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
    "titled",
    "version",
    "deleted",
]
_NEWEST_FIELDS = ["row", "key", "version", "deleted"]  # enough to tell a key's newest version
_PASSAGE_FIELDS = ["doc_id", "collection", "title", "source", "text", "char_start", "char_end", "vector"]
_ROWS_PER_CALL = 512  # writes are cut so that no message nears gRPC's size limit
_EPOCH_US = 1_577_836_800_000_000  # versions count microseconds from 2020: INT64 holds them until 2091
_TAG_BITS = 12  # the low bits of a version: the writing process's tag, so two never write the same one


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
        fusion: Fusion = adaptive_fusion,
    ) -> None:
        """`uri`: a `.db` file for milvus-lite, or http(s)://host:19530 for a server (with
        `token` when it needs one). `prefix` names the two Milvus collections used."""
        self.uri = uri
        self.embedder = embedder
        self.chunk_words = chunk_words
        self.fusion = fusion  # the hybrid ranking, as DocumentIndex fuses it
        self._spec = spec_of(embedder)
        self._local = is_local(uri)
        if self._local:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
            _quiet_lite_iterators()
        self.client = MilvusClient(uri, token=token or "")
        self._versions, self._chunks = f"{prefix}_versions", f"{prefix}_chunks"
        self._before_versions = f"{prefix}_documents"  # the one-row-per-document table of earlier releases
        self._write_lock = threading.Lock()  # this process's writes, one at a time
        self._tag = secrets.randbelow(1 << _TAG_BITS)
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
        if not client.has_collection(self._versions):
            create_versions(client, self._versions)
        if not client.has_collection(self._chunks):
            create_chunks(client, self._chunks, self.embedder.dim, record)
        for name in (self._versions, self._chunks):
            client.load_collection(name)
        if client.has_collection(self._before_versions):
            self._move_documents_to_versions()

    def _move_documents_to_versions(self) -> None:
        """An index written before versions had rows: each document row becomes its version's row
        (an upsert, so that a move cut short is simply done again), then the old table goes."""
        self.client.load_collection(self._before_versions)
        fields = [f for f in _DOCUMENT_FIELDS if f not in ("row", "deleted")]
        moved = [
            {**row, "row": version_row(row["key"], row["version"]), "deleted": False, "placeholder": _PLACEHOLDER}
            for row in self._scan(self._before_versions, "", fields)
        ]
        self._upsert_versions(moved)
        self.client.flush(self._versions)
        self.client.drop_collection(self._before_versions)
        log.info("moved %d document rows of %s to %s", len(moved), self._before_versions, self._versions)

    # --- writes --------------------------------------------------------------------------
    def add_documents(self, documents: Iterable[DocumentInput], batch_size: int = 256) -> list[IngestResult]:
        """Index documents, a batch at a time: each batch is embedded in one pass, and its
        results returned once its rows are written. Same rules as DocumentIndex (ingest_plan)."""
        return in_batches(documents, batch_size, self._add_batch)

    def _add_batch(self, documents: list[DocumentInput]) -> list[IngestResult]:
        with self._write_lock:
            return _run(self.add_steps(documents))

    def add_steps(self, documents: list[DocumentInput]) -> Generator[None, None, list[IngestResult]]:
        """One batch's write, a step (one or two Milvus calls) per `next`; its results at the end.
        A generator so that tests can interleave two replicas' writes any way they like;
        add_documents runs it through, under this process's write lock."""
        plan, newest = self._plan(identify(documents))
        if plan.writes:
            vectors = self.embedder.encode(plan.texts())
            yield
            yield from self._write_steps(plan, vectors, newest)
        return plan.done()

    def _plan(self, items: list[Identified]) -> tuple[BatchPlan, dict[str, dict]]:
        """The batch sorted out against the documents held (ingest_plan), and the newest version
        row of each of its keys, tombstones included (a new version must be newer still)."""
        newest = self._newest(one_of("key", [document_key(i.collection, i.doc_id) for i in items]))
        held = {key: _record(row) for key, row in newest.items() if not row["deleted"]}
        # Content already held under another id: the oldest such document of its collection.
        digests = sorted({i.digest for i in items if i.document.doc_id is None})
        same: dict[tuple[str, str], DocumentRecord] = {}
        if digests:
            rows = self._query(self._versions, one_of("content_hash", digests), ["key"])
            keys = sorted({r["key"] for r in rows})
            documents = [r for r in self._newest(one_of("key", keys)).values() if not r["deleted"]] if keys else []
            for row in sorted(documents, key=lambda r: (r["created_at"], r["key"])):
                same.setdefault((row["collection"], row["content_hash"]), _record(row))
        plan = plan_batch(
            items,
            lambda i: held.get(document_key(i.collection, i.doc_id)),
            lambda digest, collection: same.get((collection, digest)),
            self.chunk_words,
        )
        return plan, newest

    def _write_steps(self, plan: BatchPlan, vectors: np.ndarray, newest: dict[str, dict]) -> Iterator[None]:
        """A batch's write, step by step: its chunks, then its version rows (the commit), then
        the removal of what they supersede. A generator, so that tests can interleave two writers."""
        chunk_rows, version_rows = _rows(plan, vectors, newest, self._tag)
        _check_sizes(chunk_rows)
        for rows in _slices(chunk_rows):
            self.client.insert(self._chunks, rows)
        yield
        self._upsert_versions(version_rows)
        yield
        yield from self._drop_superseded(sorted({r["key"] for r in version_rows}))

    def _upsert_versions(self, rows: list[dict]) -> None:
        for part in _slices(rows):
            self.client.upsert(self._versions, part)

    def _drop_superseded(self, keys: list[str]) -> Iterator[None]:
        """Remove the rows and chunks of these documents older than their newest committed
        version. Never that version's own, nor a newer write's still being inserted: so any two
        writers' removals, interleaved any way, leave each document whole."""
        rows = self._query(self._versions, one_of("key", keys), _NEWEST_FIELDS)
        newest = {key: row["version"] for key, row in _newest_of(rows).items()}
        chunks = self._scan(self._chunks, one_of("doc_key", keys), ["id", "doc_key", "version"])
        stale_chunks = [c["id"] for c in chunks if c["version"] < newest.get(c["doc_key"], c["version"])]
        stale_rows = [r["row"] for r in rows if r["version"] < newest[r["key"]]]
        yield
        for ids in _slices(stale_chunks):
            self.client.delete(self._chunks, ids=ids)
        for ids in _slices(stale_rows):
            self.client.delete(self._versions, ids=ids)

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
        """Remove a document: a tombstone version hides it at once, then its older versions go."""
        with self._write_lock:
            return _run(self.delete_steps(doc_id, collection))

    def delete_steps(self, doc_id: str, collection: str = DEFAULT_COLLECTION) -> Generator[None, None, bool]:
        """delete() as steps, as add_steps is add_documents()."""
        key = document_key(collection, doc_id)
        newest = self._newest(f"key == {literal(key)}").get(key)
        if newest is None or newest["deleted"]:
            return False
        yield
        self._upsert_versions([_tombstone(newest, _next_version(newest["version"], self._tag))])
        yield
        yield from self._drop_superseded([key])
        return True

    def save(self) -> None:
        """Seal what was written (every write is already durable in Milvus's log): rows in
        growing segments are searched without their index, which on milvus-lite took 310 ms a
        search over 10k chunks against 8 ms once flushed (bench/search.py). The ingestion job
        calls this after each upload, as it writes the FAISS file on the embedded store."""
        with self._write_lock:
            for name in (self._chunks, self._versions):
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
        row = self._document(document_key(collection, doc_id))
        return _record(row) if row is not None else None

    def text(self, doc_id: str, collection: str = DEFAULT_COLLECTION) -> str:
        """The document's text as indexed (its chunks joined without their overlap)."""
        row = self._document(document_key(collection, doc_id))
        if row is None:
            return ""
        where = f"doc_key == {literal(row['key'])} and version == {int(row['version'])}"
        chunks = sorted(self._scan(self._chunks, where, ["seq", "text", "char_start", "char_end"]), key=_seq)
        return join_chunks((c["text"], c["char_start"], c["char_end"]) for c in chunks)

    def list(self, limit: int = 100, offset: int = 0, collections: list[str] | None = None) -> list[DocumentRecord]:
        """Documents oldest first (ties in the order DocumentIndex gives), of these collections
        (None: all). Milvus cannot sort a query, so every matching row is read."""
        return self.page(limit, offset, collections)[0]

    def page(self, limit: int, offset: int, collections: list[str] | None) -> tuple[list[DocumentRecord], int]:
        """list() and count() from one read of the version rows."""
        where = _in_collections(collections)
        if where is None:
            return [], 0
        records = [_record(r) for r in self._documents(where, _DOCUMENT_FIELDS)]
        records.sort(key=lambda r: (r.created_at, stored_id(r.collection, r.id)))
        return records[offset : offset + limit], len(records)

    def count(self, collections: list[str] | None = None) -> int:
        """Documents of these collections (None: all). Every version row is read, as list()
        reads them: a document may have several for a moment, and Milvus cannot count distinct keys."""
        where = _in_collections(collections)
        return 0 if where is None else len(self._documents(where, _NEWEST_FIELDS))

    def collections(self) -> list[tuple[str, int, int]]:
        """(name, documents, chunks) of every collection that holds a document."""
        held: dict[str, tuple[int, int]] = {}
        for row in self._documents("", [*_NEWEST_FIELDS, "collection", "n_chunks"]):
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
        current = self._current(dense + lexical)
        dense = [(i, s) for i, s, _ in dense if i in current]
        lexical = [(i, s) for i, s, _ in lexical if i in current]
        if mode == "hybrid":
            ranked = self.fusion(dense, lexical)[:k]
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

    def _current(self, hits: list[tuple[int, float, dict]]) -> set[int]:
        """The hits whose chunks are of their document's newest version, a tombstone aside (a
        write or delete in progress, or cut short by a crash, leaves others for a moment or until
        that document is written again). One query for the dense and the lexical hits together."""
        keys = sorted({e["doc_key"] for _, _, e in hits})
        if not keys:
            return set()
        newest = self._newest(one_of("key", keys), _NEWEST_FIELDS)
        versions = {key: row["version"] for key, row in newest.items() if not row["deleted"]}
        return {i for i, _, e in hits if versions.get(e["doc_key"]) == e["version"]}

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
    def _document(self, key: str) -> dict | None:
        """The newest version row of a document, None when there is none or it is a tombstone."""
        row = self._newest(f"key == {literal(key)}").get(key)
        return None if row is None or row["deleted"] else row

    def _newest(self, where: str, fields: list[str] = _DOCUMENT_FIELDS) -> dict[str, dict]:
        """The newest version row of each key matching a filter that bounds them (one call)."""
        return _newest_of(self._query(self._versions, where, fields))

    def _documents(self, where: str, fields: list[str]) -> list[dict]:
        """The documents matching a filter, however many: each key's newest row, unless a tombstone."""
        return [r for r in _newest_of(self._scan(self._versions, where, fields)).values() if not r["deleted"]]

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


def _rows(plan: BatchPlan, vectors: np.ndarray, newest: dict[str, dict], tag: int) -> tuple[list[dict], list[dict]]:
    """The batch's chunk rows and version rows (one per key: a later write of an id in the batch
    wins), each write under a version of its own; fills the plan's results."""
    now = time.time()
    chunk_rows: list[dict] = []
    versions: dict[str, dict] = {}
    vector = iter(vectors)
    for n, planned in enumerate(plan.writes):
        item, document = planned.item, planned.item.document
        key = document_key(item.collection, item.doc_id)
        previous = versions.get(key) or newest.get(key)
        version = _next_version(previous["version"] if previous else None, tag, offset=n)
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
        held = previous is not None and not previous["deleted"]
        versions[key] = {
            **shared,
            "row": version_row(key, version),
            "key": key,
            "content_hash": item.digest,
            "media_type": document.media_type,
            "n_chars": len(document.text.strip()),
            "n_chunks": len(planned.chunks),
            "created_at": previous["created_at"] if held else now,
            "updated_at": now,
            "titled": bool(document.title),
            "version": version,
            "deleted": False,
            "placeholder": _PLACEHOLDER,
        }
        status = "replaced" if planned.replaces else "added"
        plan.results[planned.slot] = IngestResult(item.doc_id, status, planned.title, len(planned.chunks))
    return chunk_rows, list(versions.values())


_PLACEHOLDER = [0.0] * PLACEHOLDER_DIM


def _next_version(newest: int | None, tag: int, offset: int = 0) -> int:
    """A version for a new write of a document whose newest version is `newest`: from the clock
    (microseconds, plus `offset` for the n-th write of a batch), but always after `newest`, so a
    write that saw another one's result comes after it whatever the two machines' clocks say."""
    now = time.time_ns() // 1000 - _EPOCH_US + offset
    after = (newest >> _TAG_BITS) + 1 if newest is not None else 0
    return (max(now, after) << _TAG_BITS) | tag


def _tombstone(newest: dict, version: int) -> dict:
    """The version row that deletes a document (its id and collection kept, nothing else)."""
    now = time.time()
    return {
        "row": version_row(newest["key"], version),
        "key": newest["key"],
        "doc_id": newest["doc_id"],
        "collection": newest["collection"],
        "content_hash": "",
        "title": "",
        "source": "",
        "media_type": "",
        "n_chars": 0,
        "n_chunks": 0,
        "created_at": now,
        "updated_at": now,
        "titled": False,
        "version": version,
        "deleted": True,
        "placeholder": _PLACEHOLDER,
    }


def _newest_of(rows: Iterable[dict]) -> dict[str, dict]:
    """Each key's newest version row."""
    newest: dict[str, dict] = {}
    for row in rows:
        seen = newest.get(row["key"])
        if seen is None or row["version"] > seen["version"]:
            newest[row["key"]] = row
    return newest


def _slices(items: list) -> Iterator[list]:
    """`items` in parts of at most _ROWS_PER_CALL, one Milvus call each."""
    for start in range(0, len(items), _ROWS_PER_CALL):
        yield items[start : start + _ROWS_PER_CALL]


def _run(steps: Generator[None, None, Any]) -> Any:
    """Run a write's steps to the end; what it returns."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


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
