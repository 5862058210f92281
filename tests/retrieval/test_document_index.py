"""What only the embedded index has: SQLite's generation, the FAISS file, HNSW, old stores.

What every index must do (dedup, replace, delete, collections, search, restart, concurrency)
is in test_index_conformance.py, which runs it on this index and on Milvus."""

from __future__ import annotations

import pytest

from retrieval.document_index import DocumentIndex, DocumentInput
from tests.conftest import STARTER

EELS = "Zorblax Quintaro studies glass eels. He was born in 1987 in the harbour town of Vellmora."


@pytest.fixture()
def index(tmp_path, embedder) -> DocumentIndex:
    return DocumentIndex(tmp_path, embedder)


def test_unchanged_documents_and_duplicates_write_nothing(index) -> None:
    """The store's generation, which stamps the FAISS file, moves only when something is written."""
    first = index.add_text(EELS, title="Quintaro", source="notes/quintaro.md")
    generation = index.store.generation()
    assert index.add_text(EELS, title="Quintaro", source="notes/quintaro.md").status == "unchanged"
    copy = index.add_text(EELS + "  ", source="elsewhere/copy.txt")
    assert copy.status == "duplicate" and copy.doc_id == first.doc_id
    assert index.store.generation() == generation and len(index.vectors) == 1


def test_vector_file_is_reused_and_a_broken_one_is_rebuilt(tmp_path, embedder) -> None:
    index = DocumentIndex(tmp_path, embedder)
    index.add_paths([STARTER])
    before = [p.doc_id for p in index.search("glimmerwater boiling point", k=3)]
    index.close()
    stamp = tmp_path / "vectors.faiss.json"
    assert stamp.exists()

    reopened = DocumentIndex(tmp_path, embedder)
    assert [p.doc_id for p in reopened.search("glimmerwater boiling point", k=3)] == before
    reopened.store.close()

    (tmp_path / "vectors.faiss").write_bytes(b"half a file")  # as if killed mid-write
    rebuilt = DocumentIndex(tmp_path, embedder)
    assert len(rebuilt.vectors) == rebuilt.stats()["chunks"]
    assert [p.doc_id for p in rebuilt.search("glimmerwater boiling point", k=3)] == before
    rebuilt.store.close()

    # A store that moved on after the file was written makes the file stale: rebuilt too.
    (tmp_path / "vectors.faiss").unlink()
    fresh = DocumentIndex(tmp_path, embedder)
    fresh.save()
    fresh.add_text("A late addition about Narth's lighthouse.", source="late.md")
    fresh.store.close()  # no save: the file is one generation behind
    again = DocumentIndex(tmp_path, embedder)
    assert any(p.source == "late.md" for p in again.search("Narth lighthouse", k=2))


def test_hnsw_index_supports_update_and_delete(tmp_path, embedder) -> None:
    index = DocumentIndex(tmp_path, embedder, hnsw_threshold=30)
    docs = [
        DocumentInput(f"Island {n} exports salt number {n} and keeps {n} lighthouses.", source=f"island-{n}")
        for n in range(60)
    ]
    index.add_documents(docs)
    assert index.vectors.kind == "hnsw" and len(index.vectors) == 60
    target = index.search("Island 17 exports salt number 17", k=1)[0]
    assert target.source == "island-17"
    index.delete(target.doc_id)
    assert all(p.source != "island-17" for p in index.search("Island 17 exports salt number 17", k=10))
    updated = index.add_text("Island 18 now exports pepper instead.", source="island-18")
    assert updated.status == "replaced"
    hits = index.search("Island 18 pepper", k=10)
    assert [p.text for p in hits if p.source == "island-18"] == ["Island 18 now exports pepper instead."]
    index.close()
    reopened = DocumentIndex(tmp_path, embedder, hnsw_threshold=30)
    assert reopened.vectors.kind == "hnsw" and len(reopened.vectors) == 59


def test_a_store_from_before_collections_opens_with_its_documents_in_default(tmp_path, embedder) -> None:
    import sqlite3

    old = DocumentIndex(tmp_path, embedder)
    old.add_text(EELS, title="Quintaro", source="q.md", doc_id="q")
    old.close()
    # The schema as released before collections: no collection column.
    with sqlite3.connect(tmp_path / "index.sqlite3") as conn:
        conn.execute("DROP INDEX documents_collection")
        conn.execute("ALTER TABLE documents DROP COLUMN collection")
    reopened = DocumentIndex(tmp_path, embedder)
    assert reopened.get("q").collection == "default"
    assert reopened.search("where was Quintaro born", 1, collections=["default"])[0].doc_id == "q"
