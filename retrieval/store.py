"""SQLite (WAL) holds documents, chunks and their vectors: the source of truth.

Every change is one transaction that also bumps a generation number; the FAISS file
records the generation it was built from, so a stale or half-written index is detected
and rebuilt from here.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    media_type TEXT NOT NULL,
    n_chars INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    collection TEXT NOT NULL DEFAULT 'default'
);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Added after the first release: a store from before it gets the column, every document in "default".
_COLLECTIONS = """
ALTER TABLE documents ADD COLUMN collection TEXT NOT NULL DEFAULT 'default';
"""
_COLLECTION_INDEX = "CREATE INDEX IF NOT EXISTS documents_collection ON documents(collection, content_hash);"
DEFAULT_COLLECTION = "default"
_DOCUMENT_COLUMNS = (
    "d.id, d.content_hash, d.title, d.source, d.media_type, d.n_chars, d.created_at, d.updated_at, d.collection, "
    "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id=d.id)"
)


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    id: str
    content_hash: str
    title: str
    source: str
    media_type: str
    n_chars: int
    created_at: float
    updated_at: float
    collection: str = DEFAULT_COLLECTION
    n_chunks: int = 0


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    id: int
    doc_id: str
    seq: int
    text: str
    start: int
    end: int
    title: str
    source: str
    collection: str = DEFAULT_COLLECTION


@dataclass(frozen=True, slots=True)
class NewChunk:
    seq: int
    text: str
    start: int
    end: int
    vector: np.ndarray


@dataclass(frozen=True, slots=True)
class DocumentWrite:
    doc_id: str
    content_hash: str
    title: str
    source: str
    media_type: str
    n_chars: int
    chunks: list[NewChunk]
    collection: str = DEFAULT_COLLECTION


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        with self._connect() as conn:
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(documents)")}
            if "collection" not in columns:
                conn.executescript(_COLLECTIONS)
            conn.execute(_COLLECTION_INDEX)

    def _connect(self) -> sqlite3.Connection:
        """One connection per thread: WAL lets readers go on while a writer commits."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    # --- reads -------------------------------------------------------------------------
    def generation(self) -> int:
        row = self._connect().execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def get_meta(self, key: str) -> str | None:
        row = self._connect().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def get_document(self, doc_id: str) -> DocumentRecord | None:
        return self._one_document("d.id=?", doc_id)

    def find_by_hash(self, content_hash: str, collection: str = DEFAULT_COLLECTION) -> DocumentRecord | None:
        return self._one_document("d.content_hash=? AND d.collection=?", content_hash, collection)

    def _one_document(self, condition: str, *values: str) -> DocumentRecord | None:
        row = (
            self._connect().execute(f"SELECT {_DOCUMENT_COLUMNS} FROM documents d WHERE {condition}", values).fetchone()
        )
        return _document(row) if row else None

    def list_documents(
        self, limit: int = 100, offset: int = 0, collections: list[str] | None = None
    ) -> list[DocumentRecord]:
        """Documents oldest first; only those of `collections` when given."""
        where, values = _in_collections(collections)
        rows = (
            self._connect()
            .execute(
                f"SELECT {_DOCUMENT_COLUMNS} FROM documents d {where} ORDER BY created_at, id LIMIT ? OFFSET ?",
                (*values, limit, offset),
            )
            .fetchall()
        )
        return [_document(r) for r in rows]

    def count_documents(self, collections: list[str] | None = None) -> int:
        where, values = _in_collections(collections)
        return self._connect().execute(f"SELECT COUNT(*) FROM documents d {where}", values).fetchone()[0]

    def collections(self) -> list[tuple[str, int, int]]:
        """(name, documents, chunks) of every collection that holds a document."""
        rows = self._connect().execute(
            "SELECT d.collection, COUNT(DISTINCT d.id), COUNT(c.id) FROM documents d "
            "LEFT JOIN chunks c ON c.doc_id=d.id GROUP BY d.collection ORDER BY d.collection"
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def chunk_ids_in(self, collections: list[str]) -> np.ndarray:
        """The ids of every chunk in these collections, ascending."""
        where, values = _in_collections(collections)
        rows = self._connect().execute(
            f"SELECT c.id FROM chunks c JOIN documents d ON d.id=c.doc_id {where} ORDER BY c.id", values
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def document_text(self, doc_id: str) -> str:
        """The document rebuilt from its chunks (overlaps removed by their offsets)."""
        rows = (
            self._connect()
            .execute('SELECT text, start, "end" FROM chunks WHERE doc_id=? ORDER BY seq', (doc_id,))
            .fetchall()
        )
        out, upto = [], 0
        for text, start, end in rows:
            if end <= upto:
                continue
            skip = max(0, upto - start)
            if start > upto and out:
                out.append(" ")
            out.append(text[skip:])
            upto = end
        return "".join(out)

    def counts(self) -> tuple[int, int]:
        conn = self._connect()
        return (
            conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0],
            conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0],
        )

    def chunks_by_id(self, ids: list[int]) -> dict[int, ChunkRecord]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = (
            self._connect()
            .execute(
                f'SELECT c.id, c.doc_id, c.seq, c.text, c.start, c."end", d.title, d.source, d.collection '
                f"FROM chunks c JOIN documents d ON d.id=c.doc_id WHERE c.id IN ({marks})",
                ids,
            )
            .fetchall()
        )
        return {r[0]: ChunkRecord(*r) for r in rows}

    def iter_vectors(self, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of every chunk, in batches, from one consistent snapshot."""
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("BEGIN")
            cursor = conn.execute("SELECT id, vector FROM chunks ORDER BY id")
            while rows := cursor.fetchmany(batch):
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
                yield ids, vectors
            conn.execute("COMMIT")
        finally:
            conn.close()

    def all_chunk_texts(self) -> tuple[int, list[int], list[str]]:
        """(generation, ids, texts) read in one transaction, for the lexical index."""
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("BEGIN")
            row = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
            rows = conn.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
            conn.execute("COMMIT")
        finally:
            conn.close()
        return (int(row[0]) if row else 0), [r[0] for r in rows], [r[1] for r in rows]

    # --- writes (each one transaction) ---------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One writer at a time; everything inside commits together or not at all."""
        with self._write_lock:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def put_documents(self, writes: list[DocumentWrite]) -> list[tuple[list[int], list[int]]]:
        """Insert or replace documents and their chunks in one transaction.

        Returns, per document, (chunk ids removed, chunk ids added).
        """
        now = time.time()
        results = []
        with self._transaction() as conn:
            for w in writes:
                removed = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id=?", (w.doc_id,))]
                created = conn.execute("SELECT created_at FROM documents WHERE id=?", (w.doc_id,)).fetchone()
                conn.execute("DELETE FROM chunks WHERE doc_id=?", (w.doc_id,))
                conn.execute(
                    "INSERT OR REPLACE INTO documents "
                    "(id, content_hash, title, source, media_type, n_chars, created_at, updated_at, collection) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        w.doc_id,
                        w.content_hash,
                        w.title,
                        w.source,
                        w.media_type,
                        w.n_chars,
                        created[0] if created else now,
                        now,
                        w.collection,
                    ),
                )
                added = []
                for chunk in w.chunks:
                    cursor = conn.execute(
                        'INSERT INTO chunks (doc_id, seq, text, start, "end", vector) VALUES (?, ?, ?, ?, ?, ?)',
                        (
                            w.doc_id,
                            chunk.seq,
                            chunk.text,
                            chunk.start,
                            chunk.end,
                            np.asarray(chunk.vector, dtype=np.float32).tobytes(),
                        ),
                    )
                    added.append(int(cursor.lastrowid))
                results.append((removed, added))
            if writes:
                self._bump(conn)
        return results

    def delete_document(self, doc_id: str) -> list[int]:
        """Remove a document and its chunks; returns the removed chunk ids (empty: no such document)."""
        with self._transaction() as conn:
            removed = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id=?", (doc_id,))]
            deleted = conn.execute("DELETE FROM documents WHERE id=?", (doc_id,)).rowcount
            conn.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
            if deleted:
                self._bump(conn)
        return removed if deleted else []

    def set_meta(self, key: str, value: str) -> None:
        with self._write_lock:
            self._connect().execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @staticmethod
    def _bump(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('generation', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _document(row: tuple) -> DocumentRecord:
    return DocumentRecord(*row[:9], n_chunks=row[9])


def _in_collections(collections: list[str] | None) -> tuple[str, tuple[str, ...]]:
    """A WHERE clause over documents `d` for these collections (none: every document)."""
    if collections is None:
        return "", ()
    return f"WHERE d.collection IN ({','.join('?' * len(collections))})", tuple(collections)
