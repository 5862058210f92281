"""The on-disk index: dedupe, replace, delete, persistence, HNSW, hybrid search, concurrency."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from retrieval.document_index import DocumentIndex, DocumentInput
from tests.conftest import STARTER

EELS = "Zorblax Quintaro studies glass eels. He was born in 1987 in the harbour town of Vellmora."


@pytest.fixture()
def index(tmp_path, embedder) -> DocumentIndex:
    return DocumentIndex(tmp_path, embedder)


def test_same_document_twice_is_a_no_op_and_duplicates_are_found(index) -> None:
    first = index.add_text(EELS, title="Quintaro", source="notes/quintaro.md")
    assert first.status == "added" and first.n_chunks == 1
    generation = index.store.generation()
    again = index.add_text(EELS, title="Quintaro", source="notes/quintaro.md")
    assert again.status == "unchanged" and again.doc_id == first.doc_id
    copy = index.add_text(EELS + "  ", source="elsewhere/copy.txt")  # same content, other name
    assert copy.status == "duplicate" and copy.doc_id == first.doc_id
    assert index.store.generation() == generation and index.stats()["documents"] == 1
    # A copy under an id the caller chose is kept under that id: its GET and DELETE must work
    # (it used to be reported as the other document's duplicate, and its id answered 404).
    named = index.add_documents([DocumentInput(EELS, source="copy.md", doc_id="my-copy")])[0]
    assert named.status == "added" and named.doc_id == "my-copy" and index.get("my-copy") is not None


def test_changed_document_replaces_its_chunks(index) -> None:
    first = index.add_text(EELS, title="Quintaro", source="q.md")
    changed = index.add_text(EELS.replace("Vellmora", "Brisk Harbour"), title="Quintaro", source="q.md")
    assert changed.status == "replaced" and changed.doc_id == first.doc_id
    assert index.stats() == {**index.stats(), "documents": 1, "chunks": 1, "vectors": 1}
    texts = [p.text for p in index.search("Where was Quintaro born?", k=5)]
    assert any("Brisk Harbour" in t for t in texts) and not any("Vellmora" in t for t in texts)


def test_delete_removes_from_both_stores(index) -> None:
    kept = index.add_text("The Drovik Accord was signed in 1873 in Narth.", source="drovik.md")
    gone = index.add_text(EELS, source="q.md")
    assert index.delete(gone.doc_id) and not index.delete(gone.doc_id)
    assert index.get(gone.doc_id) is None and index.stats()["chunks"] == 1 and len(index.vectors) == 1
    for mode in ("dense", "lexical", "hybrid"):
        assert {p.doc_id for p in index.search("eels Vellmora Quintaro", k=5, mode=mode)} <= {kept.doc_id}


def test_files_of_every_kind_and_results_carry_score_and_source(index, tmp_path) -> None:
    results = index.add_paths([STARTER])
    assert len(results) >= 4 and all(r.status == "added" for r in results)
    assert [r.status for r in index.add_paths([STARTER])] == ["unchanged"] * len(results)
    hits = index.search("Who invented the Velnorian harp?", k=3)
    assert hits[0].source.endswith("velnorian-harp.md") and hits[0].title == "The Velnorian harp"
    assert all(h.score > 0 and h.similarity is not None and h.chunk_id > 0 for h in hits)
    assert hits[0].score >= hits[-1].score


def test_lexical_half_finds_exact_codes(index) -> None:
    index.add_documents(
        [
            DocumentInput(
                "Replacement valve for the tidal pump, part number XK-4471-B, fits models from 2019.", source="a"
            ),
            DocumentInput(
                "Replacement valve for the tidal pump, part number QR-0932-C, fits models from 2021.", source="b"
            ),
            DocumentInput("The pump manual explains how to bleed air from the lines.", source="c"),
        ]
    )
    lexical = index.search("XK-4471-B", k=1, mode="lexical")
    assert lexical[0].source == "a"
    assert index.search("XK-4471-B", k=1, mode="hybrid")[0].source == "a"


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


def test_search_keeps_answering_during_a_large_ingestion(tmp_path, embedder) -> None:
    index = DocumentIndex(tmp_path, embedder)
    index.add_paths([STARTER])
    docs = [
        DocumentInput(
            f"Report {n}: the fishing fleet of Orrin landed {n} tonnes of herring in week {n % 52}.", source=f"r{n}"
        )
        for n in range(3000)
    ]
    writer = threading.Thread(target=index.add_documents, args=(docs,))
    writer.start()
    latencies = []
    while writer.is_alive():
        start = time.perf_counter()
        hits = index.search("Where was Zorblax Quintaro born?", k=3)
        latencies.append(time.perf_counter() - start)
        assert hits and "zorblax" in hits[0].source
    writer.join()
    print(f"searches during ingestion: {len(latencies)}, max {max(latencies):.3f}s")
    assert len(latencies) >= 5, "the ingestion should take long enough to search during it"
    assert max(latencies) < 2.0, f"a search waited {max(latencies):.2f}s on the writer"
    assert index.stats()["documents"] == 3000 + len(list(Path(STARTER).glob("*.md")))


def test_collections_keep_their_documents_and_searches_apart(index) -> None:
    vellmora = EELS
    tarnwick = EELS.replace("Vellmora", "Tarnwick")
    added = index.add_documents(
        [
            DocumentInput(vellmora, "Quintaro", "a/quintaro.md", doc_id="quintaro", collection="team-a"),
            DocumentInput(tarnwick, "Quintaro", "b/quintaro.md", doc_id="quintaro", collection="team-b"),
            # The same content in another collection is that collection's own document, not a duplicate.
            DocumentInput(vellmora, "Quintaro", "b/copy.md", collection="team-b"),
        ]
    )
    assert [r.status for r in added] == ["added", "added", "added"]
    question = "Where was Zorblax Quintaro born?"
    only_a = index.search(question, 5, collections=["team-a"])
    only_b = index.search(question, 5, collections=["team-b"])
    assert {p.collection for p in only_a} == {"team-a"} and "Vellmora" in only_a[0].text
    assert {p.collection for p in only_b} == {"team-b"} and len(only_b) == 2
    for mode in ("dense", "lexical"):
        assert {p.collection for p in index.search(question, 5, mode, collections=["team-a"])} == {"team-a"}
    assert index.search(question, 5, collections=["nobody"]) == []
    assert len(index.search(question, 5)) == 3  # no restriction: the whole index
    # One id, two collections: each is found, changed and deleted in its own collection only.
    assert index.get("quintaro", "team-a").source == "a/quintaro.md"
    assert index.get("quintaro", "team-b").source == "b/quintaro.md" and index.get("quintaro") is None
    assert "Tarnwick" in index.text("quintaro", "team-b") and index.text("quintaro", "team-c") == ""
    assert index.delete("quintaro", "team-a") and index.get("quintaro", "team-b") is not None
    assert [r.collection for r in index.list(collections=["team-b"])] == ["team-b", "team-b"]
    assert index.collections() == [("team-b", 2, 2)]
    with pytest.raises(ValueError, match="collection name"):
        index.add_documents([DocumentInput("text", collection="Team A")])


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
