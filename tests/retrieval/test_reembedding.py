"""Changing the embedder: the index re-embeds its stored chunks, searching the old vectors
meanwhile, and ends with the vectors a fresh ingestion with the new embedder computes.

The old embedder is the project's default (int8 ONNX); the new one is float32 ONNX, whose
vectors do not depend on the other texts of their batch (int8's do: its activations are
quantized per batch), so "the same as a fresh index" can be checked to float precision.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from retrieval.document_index import DocumentIndex, DocumentInput
from retrieval.embedder import Embedder
from retrieval.embedder_spec import EmbedderSpec, spec_of
from retrieval.store import Store
from tests.conftest import REPO

CACHE = REPO / "index_data" / "embedders"
QUERIES = ("Who keeps the lighthouse of Narth-7?", "Which lamp oil does Narth-12 burn?")


@pytest.fixture(scope="module")
def float_embedder() -> Embedder:
    return Embedder(backend="onnx", cache_root=CACHE)


def corpus(n: int = 24) -> list[DocumentInput]:
    """Lighthouses in two collections, half with a given title, some long enough for several chunks."""
    docs = []
    for i in range(n):
        text = (
            f"The lighthouse of Narth-{i} stands on a granite cliff above the bay. Keeper Odile Brask-{i} "
            f"lights it at dusk and burns {['whale', 'colza', 'paraffin'][i % 3]} oil in its lamp."
        )
        if i % 6 == 0:  # long: several chunks, so that chunks of one document land in different batches
            text += "".join(
                f" In the year {1800 + k} the storm season at Narth-{i} lasted {k % 9 + 2} weeks." for k in range(30)
            )
        docs.append(
            DocumentInput(
                text,
                title=f"Narth-{i} light" if i % 2 else "",
                doc_id=f"narth-{i}",
                collection="atlas" if i % 3 == 0 else "default",
            )
        )
    return docs


def stored(index: DocumentIndex) -> dict[tuple[str, int], np.ndarray]:
    """Each chunk's stored vector, by (document, position): chunk ids differ between indexes."""
    rows = index.store._connect().execute("SELECT doc_id, seq, vector FROM chunks").fetchall()
    return {(r[0], r[1]): np.frombuffer(r[2], dtype=np.float32) for r in rows}


def fresh_vectors(path: Path, embedder: Embedder, docs: list[DocumentInput]) -> dict[tuple[str, int], np.ndarray]:
    index = DocumentIndex(path, embedder)
    index.add_documents(docs)
    return stored(index)


def assert_same_vectors(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=1e-5, err_msg=str(key))


def assert_faiss_matches_store(index: DocumentIndex) -> None:
    """FAISS holds exactly the store's current vectors: never a mix with the next ones."""
    rows = index.store._connect().execute("SELECT id, vector FROM chunks WHERE length(vector) > 0").fetchall()
    assert len(index.vectors) == len(rows)
    ids = [r[0] for r in rows]
    np.testing.assert_array_equal(
        index.vectors.reconstruct(ids), np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    )


def dense_hits(index: DocumentIndex) -> dict[str, list[tuple[str, float]]]:
    return {q: [(p.doc_id, round(p.score, 4)) for p in index.search(q, k=3, mode="dense")] for q in QUERIES}


def test_new_embedder_reembeds_while_search_answers_from_the_old_vectors(tmp_path, embedder, float_embedder) -> None:
    docs = corpus()
    old = DocumentIndex(tmp_path / "index", embedder)
    old.add_documents(docs)
    before, old_vectors = dense_hits(old), stored(old)
    old.close()

    index = DocumentIndex(tmp_path / "index", float_embedder, reembed_batch=4, reembed_in_background=False)
    progress = index.reembedding_progress()
    assert progress is not None and (progress.done, progress.total) == (0, len(old_vectors))
    assert progress.source == spec_of(embedder).label and progress.target == spec_of(float_embedder).label
    # At once, before any chunk is re-embedded: the old vectors, queried with the old embedder.
    assert dense_hits(index) == before
    assert {p.collection for p in index.search("lighthouse keeper", k=10, collections=["atlas"])} == {"atlas"}

    assert not index.reembedding.run(batches=2)
    assert index.reembedding_progress().done == 8
    # Writes meanwhile: a new document (embedded with both), a deleted one whose chunks had
    # their next vectors, a replaced one. None of them may break the switch.
    added = DocumentInput("The Skerry light of Vell is kept by Amund Tarr since 1931.", title="Vell", doc_id="vell")
    changed = replace(docs[5], text=docs[5].text.replace("granite", "basalt"))
    index.add_documents([added, changed])
    assert index.delete("narth-0", collection="atlas")
    assert index.search("Who keeps the Skerry light of Vell?", k=1)[0].doc_id == "vell"
    kept = {k: v for k, v in stored(index).items() if k in old_vectors and k[0] != changed.doc_id}
    assert kept and all(np.array_equal(v, old_vectors[k]) for k, v in kept.items())
    assert_faiss_matches_store(index)

    assert index.reembedding.run()
    assert index.reembedding is None and index.reembedding_progress() is None
    assert EmbedderSpec.parse(index.store.get_meta("embedder")) == spec_of(float_embedder)
    assert index.store.get_meta("next_embedder") is None and index.store.reembedding_progress()[0] == 0
    final = [added, *[changed if d.doc_id == changed.doc_id else d for d in docs[1:]]]
    assert_same_vectors(stored(index), fresh_vectors(tmp_path / "fresh", float_embedder, final))
    assert_faiss_matches_store(index)
    # Collections still filter (FAISS's id selector, BM25's mask), and queries use the new embedder.
    for mode in ("dense", "lexical", "hybrid"):
        hits = index.search("Who keeps the lighthouse of Narth-3?", k=5, mode=mode, collections=["atlas"])
        assert hits and {p.collection for p in hits} == {"atlas"} and hits[0].doc_id == "narth-3"
    top = index.search(QUERIES[0], k=1, mode="dense")[0]
    vector = index.vectors.reconstruct([top.chunk_id])[0]
    assert top.similarity == pytest.approx(float(vector @ float_embedder.encode([QUERIES[0]])[0]), abs=1e-5)
    index.close()
    # Opened again with the new embedder: nothing left to do, the FAISS file is current.
    again = DocumentIndex(tmp_path / "index", float_embedder, reembed_in_background=False)
    assert again.reembedding is None and len(again.vectors) == len(stored(again))


def test_started_again_with_the_old_embedder_abandons_the_reembedding(tmp_path, embedder, float_embedder) -> None:
    old = DocumentIndex(tmp_path, embedder)
    old.add_documents(corpus(12))
    before, old_vectors = dense_hits(old), stored(old)
    old.close()
    half = DocumentIndex(tmp_path, float_embedder, reembed_batch=4, reembed_in_background=False)
    half.reembedding.run(batches=2)
    half.store.close()

    index = DocumentIndex(tmp_path, embedder, reembed_in_background=False)
    assert index.reembedding is None and index.store.get_meta("next_embedder") is None
    assert index.store.reembedding_progress()[0] == 0
    assert stored(index).keys() == old_vectors.keys()
    assert all(np.array_equal(v, old_vectors[k]) for k, v in stored(index).items())
    assert dense_hits(index) == before


def test_without_the_old_embedder_search_is_lexical_until_the_switch(tmp_path, embedder, float_embedder) -> None:
    docs = corpus(12)
    old = DocumentIndex(tmp_path, embedder)
    old.add_documents(docs)
    old.close()
    # Its model is gone from where it was loaded.
    gone = replace(spec_of(embedder), model=str(tmp_path / "uninstalled" / "model"))
    Store(tmp_path / "index.sqlite3").set_meta("embedder", gone.to_json())

    index = DocumentIndex(tmp_path, float_embedder, reembed_batch=4, reembed_in_background=False)
    assert not index.reembedding_progress().dense
    hits = index.search("lighthouse paraffin", k=3)  # hybrid, answered by BM25 alone
    assert hits and all(p.similarity is None for p in hits)
    assert [p.chunk_id for p in hits] == [p.chunk_id for p in index.search("lighthouse paraffin", k=3, mode="lexical")]
    # A document added meanwhile has only its new vector: FAISS, of old vectors, leaves it out.
    index.add_documents([DocumentInput("The Skerry light of Vell is kept by Amund Tarr.", doc_id="vell")])
    assert index.search("Skerry light Vell", k=1)[0].doc_id == "vell"
    assert_faiss_matches_store(index)

    assert index.reembedding.run()
    assert index.search("Who keeps the Skerry light of Vell?", k=1, mode="dense")[0].doc_id == "vell"
    want = fresh_vectors(
        tmp_path / "fresh",
        float_embedder,
        [*docs, DocumentInput("The Skerry light of Vell is kept by Amund Tarr.", doc_id="vell")],
    )
    assert_same_vectors(stored(index), want)
    assert_faiss_matches_store(index)


def test_abandoning_gives_documents_added_without_the_old_embedder_their_vectors(
    tmp_path, embedder, float_embedder
) -> None:
    old = DocumentIndex(tmp_path, embedder)
    old.add_documents(corpus(6))
    old.close()
    real = spec_of(embedder)
    store = Store(tmp_path / "index.sqlite3")
    store.set_meta("embedder", replace(real, model=str(tmp_path / "uninstalled" / "model")).to_json())
    store.close()
    during = DocumentIndex(tmp_path, float_embedder, reembed_in_background=False)
    during.add_documents([DocumentInput("The Skerry light of Vell is kept by Amund Tarr.", doc_id="vell")])
    during.store.close()

    index = DocumentIndex(tmp_path, embedder, reembed_in_background=False)  # the old model is back
    assert index.reembedding is None
    assert_faiss_matches_store(index)
    assert len(index.vectors) == index.stats()["chunks"]
    assert index.search("Who keeps the Skerry light of Vell?", k=1, mode="dense")[0].doc_id == "vell"


def test_a_record_from_before_backends_is_kept_without_reembedding(tmp_path, embedder) -> None:
    old = DocumentIndex(tmp_path, embedder)
    old.add_documents(corpus(3))
    old.close()
    Store(tmp_path / "index.sqlite3").set_meta("embedder", f"model:{embedder.dim}")  # as stores used to say
    index = DocumentIndex(tmp_path, embedder, reembed_in_background=False)
    assert index.reembedding is None
    assert json.loads(index.store.get_meta("embedder"))["backend"] == embedder.backend


def test_kill_9_halfway_leaves_a_usable_index_and_the_reembedding_resumes(tmp_path, embedder, float_embedder) -> None:
    docs = corpus(30)
    old = DocumentIndex(tmp_path, embedder)
    old.add_documents(docs)
    before, old_vectors = dense_hits(old), stored(old)
    old.close()

    worker = [sys.executable, "-m", "tests.retrieval.reembed_worker", str(tmp_path), str(CACHE), "2", "0.3"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(worker, cwd=REPO, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "READY"
        watch = Store(tmp_path / "index.sqlite3")
        deadline = time.monotonic() + 120
        while (done := watch.reembedding_progress()[0]) < 6:  # three batches committed
            assert time.monotonic() < deadline and proc.poll() is None, "the worker made no progress"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    done, total = watch.reembedding_progress()
    watch.close()
    assert 6 <= done < total, "not killed halfway"

    index = DocumentIndex(tmp_path, float_embedder, reembed_batch=8, reembed_in_background=False)
    assert index.store._connect().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Usable at once: the old vectors only, in the store and in FAISS, and the same answers.
    assert all(np.array_equal(v, old_vectors[k]) for k, v in stored(index).items())
    assert_faiss_matches_store(index)
    assert dense_hits(index) == before
    # It resumes where it stopped (what was committed is kept) and completes.
    assert index.reembedding_progress().done == done
    assert index.reembedding.run()
    assert_same_vectors(stored(index), fresh_vectors(tmp_path / "fresh", float_embedder, docs))
    assert_faiss_matches_store(index)


def test_a_store_from_before_titles_were_recorded_is_reembedded_as_it_was_ingested(tmp_path, embedder) -> None:
    docs = corpus(6)
    old = DocumentIndex(tmp_path, embedder)
    old.add_documents(docs)
    old.close()
    conn = sqlite3.connect(tmp_path / "index.sqlite3")
    conn.execute("ALTER TABLE documents DROP COLUMN titled")  # as stores were before it
    conn.commit()
    conn.close()

    store = Store(tmp_path / "index.sqlite3")
    chunks = store.chunks_to_embed(0, 1000)
    assert {c.titled for c in chunks} == {None}
    given = {(d.collection, d.doc_id): d.title for d in docs}
    for chunk in chunks:
        record = store.chunks_by_id([chunk.id])[chunk.id]
        title = given[record.collection, record.doc_id.split("/")[-1]]
        assert chunk.embedding_text() == (f"{title}\n{record.text}" if title else record.text)


def test_the_background_thread_switches_by_itself(tmp_path, embedder, float_embedder) -> None:
    old = DocumentIndex(tmp_path, embedder)
    old.add_documents(corpus(6))
    old.close()
    index = DocumentIndex(tmp_path, float_embedder, reembed_batch=4, reembed_pause_s=0.01)
    job = index.reembedding
    assert job is not None and job.wait(timeout=120) and job.error is None
    assert index.reembedding is None and index.stats()["embedder"] == spec_of(float_embedder).label
    assert_faiss_matches_store(index)
