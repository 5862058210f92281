"""One contract, every store: each test runs on the embedded index (SQLite, FAISS, bm25s) and on
Milvus (milvus-lite in a file under tmp_path, served in this process: nothing to start)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from retrieval.fusion import adaptive_fusion
from retrieval.index_protocol import KnowledgeIndex
from retrieval.ingest_plan import DocumentInput
from retrieval.milvus_index import MilvusIndex
from tests.conftest import STARTER

EELS = "Zorblax Quintaro studies glass eels. He was born in 1987 in the harbour town of Vellmora."
# Questions on the starter corpus and the file that answers each; `lexical`: whether it shares
# a word with its answer as the text writes it (milvus-lite does not stem).
QUESTIONS = [
    ("Who invented the Velnorian harp?", "velnorian-harp.md", True),
    ("At what temperature does glimmerwater boil?", "glimmerwater.md", True),
    ("Where was Zorblax Quintaro born?", "zorblax-quintaro.md", True),
    ("When was the Drovik Accord signed?", "drovik-accord.md", True),
    ("Which coolant glows green near neutrons?", "glimmerwater.md", True),
    ("Which treaty fixed the price of salt?", "drovik-accord.md", True),
    ("an instrument strung with waxed linen", "velnorian-harp.md", True),
    ("Who counts eel larvae every spring?", "zorblax-quintaro.md", True),
    ("a scientist of young fish on a coast", "zorblax-quintaro.md", False),
]


def open_index(kind: str, where: Path, embedder: Embedder) -> KnowledgeIndex:
    if kind == "faiss":
        return DocumentIndex(where, embedder)
    return MilvusIndex(str(where / "milvus.db"), embedder)


@pytest.fixture(params=["faiss", "milvus"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture()
def index(kind: str, tmp_path: Path, embedder: Embedder) -> Iterator[KnowledgeIndex]:
    index = open_index(kind, tmp_path, embedder)
    assert isinstance(index, KnowledgeIndex)
    yield index
    index.close()


def test_same_content_twice_is_unchanged_and_a_copy_is_a_duplicate(index) -> None:
    first = index.add_documents([DocumentInput(EELS, "Quintaro", "notes/quintaro.md")])[0]
    assert first.status == "added" and first.n_chunks == 1
    again = index.add_documents([DocumentInput(EELS, "Quintaro", "notes/quintaro.md")])[0]
    assert again.status == "unchanged" and again.doc_id == first.doc_id and again.n_chunks == 1
    copy = index.add_documents([DocumentInput(EELS + "  ", source="elsewhere/copy.txt")])[0]  # other name
    assert copy.status == "duplicate" and copy.doc_id == first.doc_id and copy.title == "Quintaro"
    assert index.count() == 1 and index.chunk_count() == 1
    # A copy under an id the caller chose is kept under that id: its GET and DELETE must work.
    named = index.add_documents([DocumentInput(EELS, source="copy.md", doc_id="my-copy")])[0]
    assert named.status == "added" and named.doc_id == "my-copy" and index.get("my-copy") is not None
    assert index.add_documents([DocumentInput(EELS, source="x.md", doc_id="my-copy")])[0].status == "unchanged"
    # Within one batch too: the second copy is the first one's duplicate.
    batch = index.add_documents([DocumentInput("Narth has a lighthouse.", source=s) for s in ("a.md", "b.md")])
    assert [r.status for r in batch] == ["added", "duplicate"] and batch[1].doc_id == batch[0].doc_id
    assert index.count() == 3


def test_ids_default_to_the_source_and_records_say_what_was_stored(index) -> None:
    result = index.add_documents([DocumentInput(EELS, source="q.md", media_type="text/markdown")])[0]
    assert result.doc_id == hashlib.sha256(b"q.md").hexdigest()[:16]  # no id given: from the source
    same_source = index.add_documents([DocumentInput(EELS + " More.", source="q.md")])[0]
    assert same_source.doc_id == result.doc_id and same_source.status == "replaced"
    record = index.get(result.doc_id)
    assert record.source == "q.md" and record.collection == "default" and record.n_chunks == 1
    assert record.title == EELS[:80] and record.n_chars == len(EELS + " More.")  # no title: the first line
    assert record.created_at <= record.updated_at and record.content_hash
    assert index.text(result.doc_id) == EELS + " More." and index.text("nothing") == ""
    long = " ".join(f"Sentence {n} about the harbour of Vellmora and its eels." for n in range(120))
    added = index.add_documents([DocumentInput(long, "Long", "long.md")])[0]
    assert added.n_chunks > 3 and index.text(added.doc_id) == long
    assert [r.id for r in index.list()] == [result.doc_id, added.doc_id]
    assert [r.id for r in index.list(limit=1, offset=1)] == [added.doc_id]


def test_changed_document_replaces_its_chunks(index) -> None:
    first = index.add_documents([DocumentInput(EELS, "Quintaro", "q.md")])[0]
    changed = index.add_documents([DocumentInput(EELS.replace("Vellmora", "Brisk Harbour"), "Quintaro", "q.md")])[0]
    assert changed.status == "replaced" and changed.doc_id == first.doc_id
    assert {k: index.stats()[k] for k in ("documents", "chunks", "vectors")} == {
        "documents": 1,
        "chunks": 1,
        "vectors": 1,
    }
    for mode in ("dense", "lexical", "hybrid"):
        texts = [p.text for p in index.search("Where was Quintaro born? Vellmora Brisk Harbour", k=5, mode=mode)]
        assert any("Brisk Harbour" in t for t in texts) and not any("Vellmora" in t for t in texts), mode
    assert "Brisk Harbour" in index.text(first.doc_id)


def test_delete_removes_the_document_everywhere(index) -> None:
    kept = index.add_documents([DocumentInput("The Drovik Accord was signed in 1873 in Narth.", source="d.md")])[0]
    gone = index.add_documents([DocumentInput(EELS, source="q.md")])[0]
    assert index.delete(gone.doc_id) and not index.delete(gone.doc_id)
    assert index.get(gone.doc_id) is None and index.text(gone.doc_id) == ""
    assert index.stats()["chunks"] == 1 and index.stats()["vectors"] == 1 and index.count() == 1
    for mode in ("dense", "lexical", "hybrid"):
        assert {p.doc_id for p in index.search("eels Vellmora Quintaro", k=5, mode=mode)} <= {kept.doc_id}
    # Added again after its delete: a new document, found again.
    assert index.add_documents([DocumentInput(EELS, source="q.md")])[0].status == "added"
    assert index.search("Where was Quintaro born?", 1)[0].doc_id == gone.doc_id


def test_the_starter_corpus_answers_its_questions_first(index) -> None:
    results = index.add_paths([STARTER])
    assert len(results) == 4 and all(r.status == "added" for r in results)
    assert [r.status for r in index.add_paths([STARTER])] == ["unchanged"] * 4
    for question, answer, shares_a_word in QUESTIONS:
        for mode in ("hybrid", "dense", "lexical") if shares_a_word else ("hybrid", "dense"):
            hits = index.search(question, k=3, mode=mode)
            assert hits and hits[0].source.endswith(answer), (question, mode, [h.source for h in hits])
    hits = index.search("Who invented the Velnorian harp?", k=3)
    assert hits[0].title == "The Velnorian harp" and len(hits) == 3
    assert all(h.score > 0 and h.similarity is not None and h.chunk_id > 0 for h in hits)
    assert hits[0].score >= hits[-1].score and hits[0].similarity > 0.5


def test_passages_carry_their_document_and_offsets(index) -> None:
    text = " ".join(f"Line {n}: the Orrin fleet landed {n} tonnes of herring at Narth." for n in range(80))
    index.add_documents([DocumentInput(text, "Orrin", "orrin.md", doc_id="orrin", collection="fleet")])
    for mode in ("dense", "lexical", "hybrid"):
        hits = index.search("Orrin fleet herring tonnes 42", k=3, mode=mode, collections=["fleet"])
        assert hits, mode
        for hit in hits:
            assert hit.doc_id == "orrin" and hit.collection == "fleet" and hit.title == "Orrin"
            assert hit.source == "orrin.md" and hit.text == text[hit.start : hit.end]
            assert hit.similarity is not None and -1.0 <= hit.similarity <= 1.0001


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
    assert index.search("XK-4471-B", k=1, mode="lexical")[0].source == "a"
    assert index.search("XK-4471-B", k=1, mode="hybrid")[0].source == "a"
    assert index.search("the and of", k=3, mode="lexical") == []  # stop words only: no lexical match
    assert index.search("   ", k=3) == []


def add_notices(index: KnowledgeIndex) -> str:
    """A dozen notices that all match the returned query, with BM25 scores a hair apart."""
    index.add_paths([STARTER])
    notices = [f"Harbour notice {n}: the {n}th quay opens at dawn{' today' * (n % 2)}." for n in range(12)]
    index.add_documents([DocumentInput(text, source=f"n{n}") for n, text in enumerate(notices)])
    return "harbour quay opens"


def test_hybrid_search_is_the_shared_fusion_of_the_stores_own_two_lists(index) -> None:
    # One rule on every store: its own dense and BM25 lists, fused by retrieval/fusion.py.
    flat = add_notices(index)
    for question in [q for q, _, _ in QUESTIONS] + [flat]:
        dense = [(p.chunk_id, p.score) for p in index.search(question, k=50, mode="dense")]
        lexical = [(p.chunk_id, p.score) for p in index.search(question, k=50, mode="lexical")]
        expected = adaptive_fusion(dense, lexical)[:5]
        hits = index.search(question, k=5, mode="hybrid")
        assert [p.chunk_id for p in hits] == [i for i, _ in expected], question
        assert [p.score for p in hits] == pytest.approx([s for _, s in expected]), question


def test_a_query_that_many_chunks_match_alike_follows_dense_search(index) -> None:
    # BM25 cannot tell the notices apart; min-max with a fixed 0.4 on it reordered dense's top 5.
    flat = add_notices(index)
    dense = [p.chunk_id for p in index.search(flat, k=5, mode="dense")]
    assert [p.chunk_id for p in index.search(flat, k=5, mode="hybrid")] == dense


def test_collections_keep_their_documents_and_searches_apart(index) -> None:
    tarnwick = EELS.replace("Vellmora", "Tarnwick")
    added = index.add_documents(
        [
            DocumentInput(EELS, "Quintaro", "a/quintaro.md", doc_id="quintaro", collection="team-a"),
            DocumentInput(tarnwick, "Quintaro", "b/quintaro.md", doc_id="quintaro", collection="team-b"),
            # The same content in another collection is that collection's own document, not a duplicate.
            DocumentInput(EELS, "Quintaro", "b/copy.md", collection="team-b"),
        ]
    )
    assert [r.status for r in added] == ["added", "added", "added"]
    # Within its collection, the same content again is a duplicate of that collection's copy.
    again = index.add_documents([DocumentInput(EELS, source="b/third.md", collection="team-b")])[0]
    assert again.status == "duplicate" and again.doc_id == added[2].doc_id
    question = "Where was Zorblax Quintaro born?"
    for mode in ("dense", "lexical", "hybrid"):
        only_a = index.search(question, 5, mode, collections=["team-a"])
        only_b = index.search(question, 5, mode, collections=["team-b"])
        assert {p.collection for p in only_a} == {"team-a"} and "Vellmora" in only_a[0].text, mode
        assert {p.collection for p in only_b} == {"team-b"} and len(only_b) == 2, mode
        assert len(index.search(question, 5, mode, collections=["team-a", "team-b"])) == 3, mode
        assert index.search(question, 5, mode, collections=["nobody"]) == [], mode
        assert index.search(question, 5, mode, collections=['x" or collection != "']) == [], mode
        assert index.search(question, 5, mode, collections=[]) == [], mode
    assert len(index.search(question, 5)) == 3  # no restriction: the whole index
    assert {p.doc_id for p in index.search(question, 5, collections=["team-a"])} == {"quintaro"}
    # One id, two collections: each is found, changed and deleted in its own collection only.
    assert index.get("quintaro", "team-a").source == "a/quintaro.md"
    assert index.get("quintaro", "team-b").source == "b/quintaro.md" and index.get("quintaro") is None
    assert "Tarnwick" in index.text("quintaro", "team-b") and index.text("quintaro", "team-c") == ""
    changed = index.add_documents([DocumentInput(EELS + " New.", "Q", doc_id="quintaro", collection="team-b")])
    assert changed[0].status == "replaced" and "Vellmora" in index.text("quintaro", "team-a")
    assert index.delete("quintaro", "team-a") and index.get("quintaro", "team-b") is not None
    assert not index.delete("quintaro", "team-a")
    assert [r.collection for r in index.list(collections=["team-b"])] == ["team-b", "team-b"]
    assert index.count(["team-b"]) == 2 and index.count(["team-a"]) == 0 and index.count() == 2
    first, total = index.page(1, 1, ["team-b"])
    assert first == index.list(1, 1, ["team-b"]) and total == 2 and index.page(5, 0, ["team-a"]) == ([], 0)
    assert index.collections() == [("team-b", 2, 2)]
    with pytest.raises(ValueError, match="collection name"):
        index.add_documents([DocumentInput("text", collection="Team A")])


def test_documents_and_search_survive_a_restart(kind, tmp_path, embedder) -> None:
    index = open_index(kind, tmp_path, embedder)
    index.add_paths([STARTER])
    index.add_documents([DocumentInput(EELS, "Quintaro", "q.md", doc_id="q", collection="team-a")])
    index.delete(index.list()[0].id)
    before = (index.list(), index.collections(), index.count(), index.chunk_count())
    found = [(p.doc_id, p.chunk_id, p.text) for p in index.search("glimmerwater boiling point", k=3)]
    index.close()

    reopened = open_index(kind, tmp_path, embedder)
    try:
        assert (reopened.list(), reopened.collections(), reopened.count(), reopened.chunk_count()) == before
        assert [(p.doc_id, p.chunk_id, p.text) for p in reopened.search("glimmerwater boiling point", k=3)] == found
        assert reopened.search("Where was Quintaro born?", 1, collections=["team-a"])[0].doc_id == "q"
        assert reopened.add_paths([STARTER])[0].status in ("added", "unchanged")
        assert [r.status for r in reopened.add_paths([STARTER])] == ["unchanged"] * 4
    finally:
        reopened.close()


def test_searches_never_fail_while_a_batch_is_added(index) -> None:
    index.add_paths([STARTER])
    docs = [
        DocumentInput(
            f"Report {n}: the fishing fleet of Orrin landed {n} tonnes of herring in week {n % 52}.", source=f"r{n}"
        )
        for n in range(1500)
    ]
    writer = threading.Thread(target=index.add_documents, args=(docs,), kwargs={"batch_size": 256})
    failures: list[BaseException] = []
    latencies: list[float] = []

    def search() -> None:
        modes = ["hybrid", "dense", "lexical"]
        n = 0
        while writer.is_alive():
            try:
                start = time.perf_counter()
                hits = index.search("Where was Zorblax Quintaro born?", k=3, mode=modes[n % 3])
                latencies.append(time.perf_counter() - start)
                assert hits and "zorblax" in hits[0].source
            except BaseException as exc:  # any failure at all is what this test looks for
                failures.append(exc)
                return
            n += 1

    writer.start()
    readers = [threading.Thread(target=search) for _ in range(3)]
    for reader in readers:
        reader.start()
    writer.join()
    for reader in readers:
        reader.join()
    print(f"searches during ingestion: {len(latencies)}, max {max(latencies):.3f}s")
    assert not failures, failures[0]
    assert len(latencies) >= 5, "the ingestion should take long enough to search during it"
    assert max(latencies) < 2.0, f"a search waited {max(latencies):.2f}s on the writer"
    assert index.count() == 1500 + 4 and index.chunk_count() == 1500 + 4


def test_both_stores_find_the_same_dense_neighbours(tmp_path, embedder) -> None:
    """The same vectors in both: dense rankings and similarities agree, and so does the text."""
    faiss_index = open_index("faiss", tmp_path / "faiss", embedder)
    milvus_index = open_index("milvus", tmp_path / "milvus", embedder)
    try:
        for index in (faiss_index, milvus_index):
            index.add_paths([STARTER])
        for question, _, _ in QUESTIONS:
            a = faiss_index.search(question, 4, "dense")
            b = milvus_index.search(question, 4, "dense")
            assert [p.doc_id for p in a] == [p.doc_id for p in b]
            assert [round(p.similarity, 4) for p in a] == [round(p.similarity, 4) for p in b]
            assert [(p.text, p.start, p.end, p.title, p.source) for p in a] == [
                (p.text, p.start, p.end, p.title, p.source) for p in b
            ]
        for record in faiss_index.list():
            assert faiss_index.text(record.id) == milvus_index.text(record.id)
            assert milvus_index.get(record.id).content_hash == record.content_hash
    finally:
        faiss_index.close()
        milvus_index.close()
