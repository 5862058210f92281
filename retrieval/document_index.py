"""Documents in, passages out: parsing, chunking, embedding, storing and hybrid search.

SQLite is the truth; the FAISS index and the BM25 index are derived from it and rebuilt
when missing or stale. A document is acknowledged only after its transaction commits.
Opened with another embedder than the one its vectors come from, the index re-embeds its
chunks in the background and searches the old vectors meanwhile (retrieval/reembedding.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np

from retrieval import ingest_plan
from retrieval.embedder import Embedder
from retrieval.embedder_spec import EmbedderSpec, spec_of
from retrieval.faiss_index import VectorIndex
from retrieval.fusion import Fusion, adaptive_fusion
from retrieval.index_protocol import CollectionSearcher, SearchMode
from retrieval.ingest_plan import (
    DocumentInput,
    IngestResult,
    identify,
    in_batches,
    plan_batch,
    public_id,
    read_document,
    stored_id,
)
from retrieval.lexical import LexicalIndex
from retrieval.reembedding import Progress, Reembedder
from retrieval.store import DEFAULT_COLLECTION, DocumentRecord, DocumentWrite, NewChunk, Store
from retrieval.types import Passage

log = logging.getLogger(__name__)


def _public(record: DocumentRecord) -> DocumentRecord:
    return replace(record, id=public_id(record.id, record.collection))


def _public_or_none(record: DocumentRecord | None) -> DocumentRecord | None:
    return _public(record) if record is not None else None


class DocumentIndex:
    def __init__(
        self,
        data_dir: Path,
        embedder: Embedder,
        hnsw_threshold: int = 50_000,
        chunk_words: int = 150,
        fusion: Fusion = adaptive_fusion,
        reembed_batch: int = 16,
        reembed_pause_s: float = 0.05,
        reembed_in_background: bool = True,
    ) -> None:
        """`embedder`: the one to index with. If the stored vectors come from another, a
        re-embedding is set up in `self.reembedding`, and started on a thread unless
        `reembed_in_background` is False (then the caller runs it)."""
        self.data_dir = Path(data_dir)
        self.embedder = embedder
        self._spec = spec_of(embedder)
        self.chunk_words = chunk_words
        # Dense and lexical rankings into one hybrid ranking (retrieval/fusion.py says how).
        self.fusion = fusion
        self.store = Store(self.data_dir / "index.sqlite3")
        self._vector_path = self.data_dir / "vectors.faiss"
        self._hnsw_threshold = hnsw_threshold
        self._lock = threading.RLock()  # FAISS is not safe for a search during an add
        self._lexical = LexicalIndex()
        self._lexical_lock = threading.Lock()
        self._allowed: dict[tuple[str, ...], tuple[int, np.ndarray]] = {}  # collections -> (generation, chunk ids)
        # While a re-embedding runs: the embedder of the vectors searched (None: it cannot be
        # loaded), and one lock for a write and the switch (see _writing).
        self._query_embedder: Embedder | None = embedder
        self._vector_dim = embedder.dim
        self._write_lock = threading.RLock()
        self.reembedding: Reembedder | None = None
        self._open_embedder(reembed_batch, reembed_pause_s)
        self.vectors = self._load_or_rebuild_vectors()
        if self.reembedding is not None and reembed_in_background:
            self.reembedding.start()

    # --- start-up ------------------------------------------------------------------------
    def _open_embedder(self, batch: int, pause_s: float) -> None:
        """Compare the embedder given with the one the stored vectors come from; when they
        differ, set up the re-embedding (resumed if one towards this embedder was under way)."""
        record, pending = self.store.get_meta("embedder"), self.store.get_meta("next_embedder")
        recorded = EmbedderSpec.parse(record) if record else None
        if recorded is None or self.store.counts()[1] == 0:  # no vector to keep
            if pending:
                self.store.abandon_reembedding()
            self.store.set_meta("embedder", self._spec.to_json())
            return
        if recorded.same_vectors(self._spec):
            if recorded != self._spec:  # moved, or a record from before backends: now current
                self.store.set_meta("embedder", self._spec.to_json())
            if pending:
                log.warning("abandoning the re-embedding towards %s: started with %s again", pending, recorded.label)
                self.store.abandon_reembedding()
                self._fill_placeholders()
            return
        target = EmbedderSpec.parse(pending) if pending else None
        if target is not None and target.same_vectors(self._spec):
            done, total = self.store.reembedding_progress()
            log.info("resuming the re-embedding towards %s: %d of %d chunks done", self._spec.label, done, total)
        else:
            self.store.begin_reembedding(self._spec.to_json())
        old = self._load_recorded(recorded)
        self._query_embedder, self._vector_dim = old, recorded.dim
        self.reembedding = Reembedder(
            self.store,
            recorded,
            self._spec,
            self._reembedding_embedder,
            self._switch_embedder,
            dense=old is not None,
            batch=batch,
            pause_s=pause_s,
        )

    def _load_recorded(self, spec: EmbedderSpec) -> Embedder | None:
        """The embedder the stored vectors come from, to embed queries until the switch;
        None when it cannot be loaded as it was (search is lexical only meanwhile)."""
        try:
            if spec.legacy:
                raise ValueError("its record names no path or backend")
            old = Embedder(spec.model, spec.backend, self.embedder.cache_root)  # type: ignore[arg-type]
            if spec_of(old).same_vectors(spec):
                return old
            reason = "its model's weights changed"
        except Exception as exc:  # a model gone, or unreadable: every way it fails is handled alike
            reason = str(exc)
        log.warning(
            "the index's embedder %s cannot be loaded (%s): search is lexical only until %s has re-embedded it",
            spec.label,
            reason,
            self._spec.label,
        )
        return None

    def _reembedding_embedder(self) -> Embedder:
        """The new model again, on one ONNX thread: all the work stays on the re-embedding's
        own low-priority thread. (torch's threads are per process: its shared model is used.)"""
        e = self.embedder
        if e.backend == "torch":
            return e
        return Embedder(e.model_name, e.backend, e.cache_root, e.batch_size, threads=1)

    def _switch_embedder(self) -> bool:
        """The next vectors take over (one transaction), FAISS is rebuilt from them alone, and
        queries go to the new embedder; False while some chunk still lacks its next vector."""
        with self._write_lock:
            if not self.store.switch_vectors(self._spec.to_json()):
                return False
            vectors = self._vectors_from_store(self.embedder.dim)
            with self._lock:
                self.vectors, self._vector_dim, self._query_embedder = vectors, self.embedder.dim, self.embedder
            self.save()
            self.reembedding = None
        return True

    def _fill_placeholders(self) -> None:
        """Chunks added while the old embedder could not be loaded have no vector of its: now
        that it is back (a re-embedding was abandoned), they get one."""
        while batch := self.store.chunks_to_embed(0, 256, placeholders=True):
            self.store.set_vectors([c.id for c in batch], self.embedder.encode([c.embedding_text() for c in batch]))

    def _load_or_rebuild_vectors(self) -> VectorIndex:
        generation = self.store.generation()
        loaded = VectorIndex.load(self._vector_path, generation, hnsw_threshold=self._hnsw_threshold)
        if loaded is not None and loaded.dim == self._vector_dim:
            return loaded
        index = self._vectors_from_store(self._vector_dim)
        if generation:
            index.save(self._vector_path, generation)
        return index

    def _vectors_from_store(self, dim: int) -> VectorIndex:
        index = VectorIndex(dim, hnsw_threshold=self._hnsw_threshold)
        for ids, vectors in self.store.iter_vectors():
            index.add(ids, vectors)
        log.info("rebuilt the vector index from the store: %d chunks", len(index))
        return index

    def _writing(self) -> AbstractContextManager[object]:
        """While a re-embedding runs, writes and the switch go one at a time: a batch embedded
        for the old vectors must not commit after the switch, and the FAISS index rebuilt by
        the switch must not miss a delete. (Without one, none can start in this process.)"""
        return self._write_lock if self.reembedding is not None else nullcontext()

    def reembedding_progress(self) -> Progress | None:
        """{done, total, from, to} while a re-embedding runs; None otherwise."""
        job = self.reembedding
        return job.progress() if job is not None and not job.finished else None

    def reembedding_running(self) -> bool:
        """Whether a re-embedding thread works now: cheap (no count), read at every generation step."""
        job = self.reembedding
        return job is not None and not job.finished

    # --- writes --------------------------------------------------------------------------
    def add_text(
        self,
        text: str,
        *,
        title: str = "",
        source: str = "",
        doc_id: str | None = None,
        media_type: str = "text/plain",
    ) -> IngestResult:
        return self.add_documents([DocumentInput(text, title, source, doc_id, media_type)])[0]

    def add_documents(self, documents: Iterable[DocumentInput], batch_size: int = 256) -> list[IngestResult]:
        """Index documents, a batch per transaction: each batch is embedded in one pass and
        acknowledged only once committed. Large batches sort better by length, so less padding
        is computed (2,000 MS MARCO passages: 12.1 s in batches of 64, 9.9 s in batches of 256).

        Same id and same content: nothing to do. Same content under a new id: a duplicate of
        the existing document. Changed content: its chunks are replaced.
        """
        return in_batches(documents, batch_size, self._add_batch)

    def _add_batch(self, documents: list[DocumentInput]) -> list[IngestResult]:
        plan = plan_batch(
            identify(documents),
            lambda item: self.store.get_document(stored_id(item.collection, item.doc_id)),
            lambda digest, collection: _public_or_none(self.store.find_by_hash(digest, collection)),
            self.chunk_words,
        )
        texts = plan.texts()
        with self._writing():
            # During a re-embedding: the old embedder's vectors (none when it is gone) for
            # search now, and the new one's for the switch.
            current = self._query_embedder
            vectors = current.encode(texts) if current is not None else [None] * len(texts)
            upcoming = self.embedder.encode(texts) if self.reembedding is not None else [None] * len(texts)
            writes, at = [], 0
            for planned in plan.writes:
                item, chunks = planned.item, planned.chunks
                mine = zip(chunks, vectors[at : at + len(chunks)], upcoming[at : at + len(chunks)])
                at += len(chunks)
                writes.append(
                    DocumentWrite(
                        stored_id(item.collection, item.doc_id),
                        item.digest,
                        planned.title,
                        item.document.source,
                        item.document.media_type,
                        len(item.document.text.strip()),
                        [NewChunk(n, c.text, c.start, c.end, v, u) for n, (c, v, u) in enumerate(mine)],
                        item.collection,
                        titled=bool(item.document.title),
                    )
                )
            changes = self.store.put_documents(writes)
            with self._lock:
                for planned, write, (removed, added) in zip(plan.writes, writes, changes):
                    self.vectors.remove(removed)
                    if current is not None:
                        self.vectors.add(np.asarray(added, np.int64), np.stack([c.vector for c in write.chunks]))
                    status = "replaced" if planned.replaces else "added"
                    plan.results[planned.slot] = IngestResult(planned.item.doc_id, status, write.title, len(added))
        return plan.done()

    def add_bytes(
        self,
        data: bytes,
        filename: str | None = None,
        media_type: str | None = None,
        *,
        source: str = "",
        doc_id: str | None = None,
    ) -> IngestResult:
        return self.add_documents([read_document(data, filename, media_type, source=source, doc_id=doc_id)])[0]

    def add_path(self, path: Path) -> IngestResult:
        return self.add_paths([path])[0]

    def add_paths(
        self,
        paths: Iterable[Path],
        progress: Callable[[Path, IngestResult | Exception], None] | None = None,
        batch_size: int = 256,
    ) -> list[IngestResult]:
        """Index files and folders (recursively, supported types only), in batches; then save
        the vector file. Files that cannot be read are reported to `progress` and skipped."""
        results = ingest_plan.add_paths(self.add_documents, paths, progress, batch_size)
        self.save()
        return results

    def delete(self, doc_id: str, collection: str = DEFAULT_COLLECTION) -> bool:
        """Remove a document and its chunks from both stores; False if there was none."""
        key = stored_id(collection, doc_id)
        record = self.store.get_document(key)
        if record is None or record.collection != collection:
            return False
        with self._writing():
            removed = self.store.delete_document(key)
            with self._lock:
                self.vectors.remove(removed)
        return True

    def save(self) -> None:
        """Write the vector index file for the store's current generation."""
        with self._lock:
            self.vectors.save(self._vector_path, self.store.generation())

    def close(self) -> None:
        if self.reembedding is not None:
            self.reembedding.stop()
        self.save()
        self.store.close()

    # --- reads ---------------------------------------------------------------------------
    def get(self, doc_id: str, collection: str = DEFAULT_COLLECTION) -> DocumentRecord | None:
        record = self.store.get_document(stored_id(collection, doc_id))
        return _public(record) if record is not None and record.collection == collection else None

    def text(self, doc_id: str, collection: str = DEFAULT_COLLECTION) -> str:
        """The document's text as indexed (its chunks joined without their overlap)."""
        return self.store.document_text(stored_id(collection, doc_id)) if self.get(doc_id, collection) else ""

    def list(self, limit: int = 100, offset: int = 0, collections: list[str] | None = None) -> list[DocumentRecord]:
        """Documents oldest first, of these collections (None: all)."""
        return [_public(r) for r in self.store.list_documents(limit, offset, collections)]

    def count(self, collections: list[str] | None = None) -> int:
        return self.store.count_documents(collections)

    def page(self, limit: int, offset: int, collections: list[str] | None) -> tuple[list[DocumentRecord], int]:
        """list() and count(): two indexed SQL queries."""
        return self.list(limit, offset, collections), self.count(collections)

    def collections(self) -> list[tuple[str, int, int]]:
        """(name, documents, chunks) of every collection that holds a document."""
        return self.store.collections()

    def scoped(self, collections: list[str] | None) -> DocumentIndex | CollectionSearcher:
        """A searcher over these collections only (None: the whole index)."""
        return self if collections is None else CollectionSearcher(self, collections)

    def chunk_count(self) -> int:
        return self.store.counts()[1]

    def stats(self) -> dict[str, int | str]:
        documents, chunks = self.store.counts()
        return {
            "documents": documents,
            "chunks": chunks,
            "vectors": len(self.vectors),
            "index_kind": self.vectors.kind,
            "generation": self.store.generation(),
            "embedder": self._spec.label if self.reembedding is None else self.reembedding.source.label,
        }

    def search(
        self, query: str, k: int = 5, mode: SearchMode = "hybrid", collections: list[str] | None = None
    ) -> list[Passage]:
        """The k best passages for the query; from these collections only when given (both
        the dense and the lexical search are restricted, so no other collection's chunk takes
        a place in the ranking)."""
        query = query.strip()
        if not query:
            return []
        allowed = self._chunks_in(collections)
        if allowed is not None and len(allowed) == 0:
            return []
        depth = max(50, 4 * k)
        with self._lock:  # the query and the vectors it is compared with come from one embedder
            embedder, vectors = self._query_embedder, self.vectors
        if embedder is None:
            mode = "lexical"  # re-embedding without the old embedder: no query vector for its vectors
        query_vector = embedder.encode([query])[0] if embedder is not None else None
        dense: list[tuple[int, float]] = []
        lexical: list[tuple[int, float]] = []
        if mode in ("hybrid", "dense") and query_vector is not None:
            with self._lock:
                scores, ids = vectors.search(query_vector[None], depth, allowed=allowed)
            dense = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        if mode in ("hybrid", "lexical"):
            self._refresh_lexical()
            lexical = self._lexical.search(query, depth, allowed=allowed)
        if mode == "hybrid":
            ranked = self.fusion(dense, lexical)[:k]
        else:
            ranked = (dense or lexical)[:k]
        return self._passages(ranked, query_vector, vectors)

    def _chunks_in(self, collections: list[str] | None) -> np.ndarray | None:
        """Chunk ids of these collections (None: no restriction), cached until the store changes."""
        if collections is None:
            return None
        key = tuple(sorted(set(collections)))
        generation = self.store.generation()
        cached = self._allowed.get(key)
        if cached is None or cached[0] != generation:
            if len(self._allowed) > 64:
                self._allowed.clear()
            cached = self._allowed[key] = (generation, self.store.chunk_ids_in(list(key)))
        return cached[1]

    def _refresh_lexical(self) -> None:
        if self._lexical.generation == self.store.generation():
            return
        with self._lexical_lock:  # one rebuild at a time; others use the previous one meanwhile
            generation, ids, texts = self.store.all_chunk_texts()
            if self._lexical.generation != generation:
                self._lexical.rebuild(generation, ids, texts)

    def _passages(
        self, ranked: list[tuple[int, float]], query_vector: np.ndarray | None, vectors: VectorIndex
    ) -> list[Passage]:
        records = self.store.chunks_by_id([i for i, _ in ranked])
        similarity: dict[int, float] = {}
        if query_vector is not None:
            with self._lock:
                for i, _ in ranked:
                    if i in records:
                        try:
                            similarity[i] = float(vectors.reconstruct([i])[0] @ query_vector)
                        except RuntimeError:  # a lexical hit without a vector yet
                            pass
        return [
            Passage(
                text=r.text,
                source=r.source,
                title=r.title,
                score=score,
                doc_id=public_id(r.doc_id, r.collection),
                chunk_id=r.id,
                similarity=similarity.get(i),
                start=r.start,
                end=r.end,
                collection=r.collection,
            )
            for i, score in ranked
            if (r := records.get(i)) is not None
        ]
