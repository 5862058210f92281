"""SQLite (WAL) holds documents, chunks and their vectors: the source of truth.

Every change is one transaction that also bumps a generation number; the FAISS file
records the generation it was built from, so a stale or half-written index is detected
and rebuilt from here. While the embedder changes, `next_vectors` holds the new embedder's
vectors beside the current ones (retrieval/reembedding.py says how they take over).
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

from retrieval.chunking import join_chunks

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
    collection TEXT NOT NULL DEFAULT 'default',
    titled INTEGER
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
CREATE TABLE IF NOT EXISTS next_vectors (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    vector BLOB NOT NULL
);
"""
# Added after the first release: a store from before it gets the column, every document in "default".
_COLLECTIONS = """
ALTER TABLE documents ADD COLUMN collection TEXT NOT NULL DEFAULT 'default';
"""
# Whether a document's chunks were embedded with its title (1) or not (0); NULL: a document
# from before the column, whose re-embedding infers it (see ChunkToEmbed.embedding_text).
_TITLED = "ALTER TABLE documents ADD COLUMN titled INTEGER;"
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
    vector: np.ndarray | None  # None: none yet in the current embedder's space (stored empty)
    next_vector: np.ndarray | None = None  # the next embedder's, while a re-embedding runs


@dataclass(frozen=True, slots=True)
class ChunkToEmbed:
    id: int
    text: str
    title: str
    titled: bool | None
    first_chunk: str | None  # the document's first chunk, when `titled` is unknown

    def embedding_text(self) -> str:
        """What an ingestion embeds for this chunk: its document's title and the chunk when
        the title was given, else the chunk alone. A document from before `titled` was
        recorded had no title given when its title is its first line (that is the default)."""
        titled = self.titled
        if titled is None:
            lines = (self.first_chunk or "").splitlines()
            titled = self.title != (lines[0][:80] if lines else "")
        return f"{self.title}\n{self.text}" if titled else self.text


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
    titled: bool = False  # the chunks were embedded with the title


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
            if "titled" not in columns:
                conn.executescript(_TITLED)
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
        return join_chunks(rows)

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
        """(ids, vectors) of every chunk that has one, in batches, from one consistent snapshot."""
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("BEGIN")
            cursor = conn.execute("SELECT id, vector FROM chunks WHERE length(vector) > 0 ORDER BY id")
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
                    "INSERT OR REPLACE INTO documents (id, content_hash, title, source, media_type, "
                    "n_chars, created_at, updated_at, collection, titled) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                        int(w.titled),
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
                            _blob(chunk.vector),
                        ),
                    )
                    added.append(int(cursor.lastrowid))
                    if chunk.next_vector is not None:
                        conn.execute(
                            "INSERT INTO next_vectors (chunk_id, vector) VALUES (?, ?)",
                            (cursor.lastrowid, _blob(chunk.next_vector)),
                        )
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

    # --- re-embedding: see retrieval/reembedding.py ----------------------------------------
    def reembedding_progress(self) -> tuple[int, int]:
        """(chunks with their next vector, chunks)."""
        row = self._connect().execute("SELECT (SELECT COUNT(*) FROM next_vectors), (SELECT COUNT(*) FROM chunks)")
        done, total = row.fetchone()
        return int(done), int(total)

    def chunks_to_embed(self, after: int, limit: int, placeholders: bool = False) -> list[ChunkToEmbed]:
        """Up to `limit` chunks with ids above `after`, ascending, that still lack a next vector
        (with `placeholders`: that lack a current one)."""
        missing = (
            "length(c.vector) = 0"
            if placeholders
            else "NOT EXISTS (SELECT 1 FROM next_vectors n WHERE n.chunk_id=c.id)"
        )
        rows = self._connect().execute(
            "SELECT c.id, c.text, d.title, d.titled, CASE WHEN d.titled IS NULL THEN "
            "(SELECT f.text FROM chunks f WHERE f.doc_id=d.id ORDER BY f.seq LIMIT 1) END "
            f"FROM chunks c JOIN documents d ON d.id=c.doc_id WHERE c.id > ? AND {missing} ORDER BY c.id LIMIT ?",
            (after, limit),
        )
        return [ChunkToEmbed(r[0], r[1], r[2], None if r[3] is None else bool(r[3]), r[4]) for r in rows]

    def begin_reembedding(self, target: str) -> None:
        """Start towards the embedder `target` (a record): next vectors from any other are dropped."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM next_vectors")
            _put_meta(conn, "next_embedder", target)

    def abandon_reembedding(self) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM next_vectors")
            conn.execute("DELETE FROM meta WHERE key='next_embedder'")

    def put_next_vectors(self, ids: list[int], vectors: np.ndarray) -> None:
        """One batch of next vectors, one transaction; a chunk deleted meanwhile is skipped.
        The generation stays: the current vectors, which FAISS holds, did not change."""
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO next_vectors (chunk_id, vector) SELECT id, ? FROM chunks WHERE id=?",
                [(_blob(v), i) for i, v in zip(ids, vectors)],
            )

    def switch_vectors(self, embedder: str) -> bool:
        """Every chunk's next vector becomes its vector and `embedder` is recorded, in one
        transaction; False, and nothing changed, while some chunk still lacks its next vector."""
        with self._transaction() as conn:
            missing = conn.execute(
                "SELECT 1 FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM next_vectors n WHERE n.chunk_id=c.id) LIMIT 1"
            ).fetchone()
            if missing:
                return False
            conn.execute("UPDATE chunks SET vector=(SELECT n.vector FROM next_vectors n WHERE n.chunk_id=chunks.id)")
            conn.execute("DELETE FROM next_vectors")
            conn.execute("DELETE FROM meta WHERE key='next_embedder'")
            _put_meta(conn, "embedder", embedder)
            self._bump(conn)
        return True

    def set_vectors(self, ids: list[int], vectors: np.ndarray) -> None:
        """Give chunks their current vectors (those stored without one)."""
        with self._transaction() as conn:
            conn.executemany("UPDATE chunks SET vector=? WHERE id=?", [(_blob(v), i) for i, v in zip(ids, vectors)])
            self._bump(conn)

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


def _put_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def _blob(vector: np.ndarray | None) -> bytes:
    """A vector as stored; no vector is an empty blob (the column is NOT NULL)."""
    return b"" if vector is None else np.asarray(vector, dtype=np.float32).tobytes()


def _document(row: tuple) -> DocumentRecord:
    return DocumentRecord(*row[:9], n_chunks=row[9])


def _in_collections(collections: list[str] | None) -> tuple[str, tuple[str, ...]]:
    """A WHERE clause over documents `d` for these collections (none: every document)."""
    if collections is None:
        return "", ()
    return f"WHERE d.collection IN ({','.join('?' * len(collections))})", tuple(collections)
