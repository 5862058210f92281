"""What only the Milvus index has: writes without transactions (a write or delete cut short, a
kill -9), the embedder record, safe filters, and the settings that choose it."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError
from pymilvus import DataType

from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from retrieval.ingest_plan import DocumentInput
from retrieval.milvus_index import MilvusIndex
from retrieval.milvus_schema import literal, one_of
from service.runtime.runtime import local_index
from service.settings import Settings
from tests.conftest import REPO
from tests.retrieval.ingest_worker import ingest_until_killed

EELS = "Zorblax Quintaro studies glass eels. He was born in 1987 in the harbour town of Vellmora."
MOVED = EELS.replace("Vellmora", "Brisk Harbour")


@pytest.fixture()
def index(tmp_path, embedder):
    index = MilvusIndex(str(tmp_path / "milvus.db"), embedder)
    yield index
    index.close()


def shown(index: MilvusIndex) -> set[str]:
    """Every text a search shows, in any mode."""
    return {p.text for mode in ("dense", "lexical", "hybrid") for p in index.search("Quintaro born", 10, mode)}


def test_a_replacement_cut_short_shows_only_the_old_version_until_written_again(index, monkeypatch) -> None:
    index.add_documents([DocumentInput(EELS, "Quintaro", doc_id="q")])

    def killed(*args, **kwargs):
        raise ConnectionError("killed before the document row was written")

    monkeypatch.setattr(index.client, "upsert", killed)
    with pytest.raises(ConnectionError):
        index.add_documents([DocumentInput(MOVED, "Quintaro", doc_id="q")])
    # The new chunks were inserted, but no row names them: nothing of them is shown.
    assert index.chunk_count() == 2 and shown(index) == {EELS}
    assert index.text("q") == EELS and index.get("q").n_chunks == 1 and index.collections() == [("default", 1, 1)]
    monkeypatch.undo()
    assert index.add_documents([DocumentInput(MOVED, "Quintaro", doc_id="q")])[0].status == "replaced"
    assert index.chunk_count() == 1 and shown(index) == {MOVED}  # the leftover went with the old version


def test_a_delete_cut_short_hides_the_document_at_once(index, monkeypatch) -> None:
    index.add_documents([DocumentInput(EELS, "Quintaro", doc_id="q")])
    delete = index.client.delete

    def only_the_row(table, **kwargs):
        if table.endswith("_chunks"):
            raise ConnectionError("killed after the row was deleted")
        return delete(table, **kwargs)

    monkeypatch.setattr(index.client, "delete", only_the_row)
    with pytest.raises(ConnectionError):
        index.delete("q")
    monkeypatch.undo()
    assert index.get("q") is None and index.text("q") == "" and shown(index) == set() and index.chunk_count() == 1
    assert index.add_documents([DocumentInput(MOVED, "Quintaro", doc_id="q")])[0].status == "added"
    assert index.chunk_count() == 1 and shown(index) == {MOVED}


def test_an_index_from_before_version_rows_moves_its_documents_over(tmp_path, embedder) -> None:
    """Indexes written before versions had rows kept one row per document in `<prefix>_documents`
    (the primary key its document key): such rows become version rows, and the old table goes."""
    uri = str(tmp_path / "milvus.db")
    index = MilvusIndex(uri, embedder)
    index.add_documents([DocumentInput(EELS, "Quintaro", doc_id="q", collection="team-a")])
    rows = index.client.query(index._versions, filter="", output_fields=["*"])
    old = index.client.create_schema(auto_id=False)
    old.add_field("key", DataType.VARCHAR, max_length=64, is_primary=True)
    for name in ("doc_id", "collection", "content_hash", "title", "source", "media_type"):
        old.add_field(name, DataType.VARCHAR, max_length=1024)
    for name in ("n_chars", "n_chunks", "version"):
        old.add_field(name, DataType.INT64)
    for name in ("created_at", "updated_at"):
        old.add_field(name, DataType.DOUBLE)
    old.add_field("titled", DataType.BOOL)
    old.add_field("placeholder", DataType.FLOAT_VECTOR, dim=2)
    params = index.client.prepare_index_params()
    params.add_index("placeholder", index_type="FLAT", metric_type="L2")
    index.client.create_collection("ragpause_documents", schema=old, index_params=params)
    index.client.insert(
        "ragpause_documents", [{k: v for k, v in r.items() if k not in ("row", "deleted")} for r in rows]
    )
    index.client.drop_collection(index._versions)
    index.close()

    reopened = MilvusIndex(uri, embedder)
    try:
        assert not reopened.client.has_collection("ragpause_documents")
        assert reopened.text("q", "team-a") == EELS and reopened.get("q", "team-a").title == "Quintaro"
        assert [p.doc_id for p in reopened.search("Where was Quintaro born?", 1, collections=["team-a"])] == ["q"]
        assert reopened.add_documents([DocumentInput(MOVED, doc_id="q", collection="team-a")])[0].status == "replaced"
        assert reopened.text("q", "team-a") == MOVED and reopened.chunk_count() == 1
    finally:
        reopened.close()


def test_acknowledged_documents_survive_kill_9(tmp_path, embedder) -> None:
    rng = random.Random(16)
    acked: set[str] = set()
    cache = REPO / "index_data" / "embedders"
    for round_ in range(2):
        before = len(acked)
        args = [str(tmp_path), str(cache), str(round_ * 5000), "5000", "8", "0", "milvus"]
        ingest_until_killed(args, rng.uniform(1.0, 3.0), acked)
        assert before < len(acked) < 5000 * (round_ + 1), f"round {round_}: not killed mid-ingestion"

        index = MilvusIndex(str(tmp_path / "milvus.db"), embedder)  # the dead process's lock is no obstacle
        try:
            stored = {d.id for d in index.list(limit=20_000)}
            assert acked <= stored, f"lost after kill -9: {sorted(acked - stored)[:5]}"
            # A batch cut short may leave chunks no row names, never a row without its chunks.
            assert index.chunk_count() >= len(stored) == index.count()
            for doc_id in rng.sample(sorted(acked), 5):
                record = index.get(doc_id)
                text = index.text(doc_id)
                assert record.n_chunks == 1 and text.startswith(f"Document {doc_id.split('-')[1]} describes")
                assert doc_id in {h.doc_id for h in index.search(f"{record.title}\n{text}", k=20, mode="dense")}
        finally:
            index.close()


class OtherEmbedder:
    """The same vectors under another name: what the index records is another embedder."""

    def __init__(self, embedder: Embedder) -> None:
        self.model_name, self.backend, self.dim = "/nowhere/other-model", "onnx", embedder.dim
        self.encode = embedder.encode


def test_vectors_of_another_embedder_are_refused_unless_there_are_none(tmp_path, embedder) -> None:
    uri = str(tmp_path / "milvus.db")
    first = MilvusIndex(uri, embedder)
    first.add_documents([DocumentInput(EELS, doc_id="q")])
    first.close()
    with pytest.raises(RuntimeError, match="re-embedding on Milvus is not supported yet"):
        MilvusIndex(uri, OtherEmbedder(embedder))  # type: ignore[arg-type]
    emptied = MilvusIndex(uri, embedder)
    assert emptied.delete("q") and emptied.reembedding_progress() is None and not emptied.reembedding_running()
    emptied.close()
    other = MilvusIndex(uri, OtherEmbedder(embedder))  # type: ignore[arg-type]
    assert other.stats()["embedder"].startswith("other-model:onnx") and other.chunk_count() == 0
    other.close()


def test_filters_hold_only_literals_they_need_not_escape() -> None:
    assert one_of("collection", ["team-a", "b_2"]) == 'collection in ["team-a", "b_2"]'
    for unsafe in ['a"b', "a\\", "", "x or y", "é"]:
        with pytest.raises(ValueError):
            literal(unsafe)


def test_settings_choose_the_index(tmp_path, embedder, monkeypatch) -> None:
    monkeypatch.setenv("RAGPAUSE_INDEX", "milvus")
    settings = Settings(data_dir=tmp_path)
    assert settings.milvus_location() == str(tmp_path / "milvus.db")
    index = local_index(settings, embedder)
    try:
        assert isinstance(index, MilvusIndex) and (tmp_path / "milvus.db").exists()
    finally:
        index.close()
    assert Settings(milvus_uri="http://milvus:19530").milvus_location() == "http://milvus:19530"
    with pytest.raises(ValidationError, match=r"\.db"):
        Settings(milvus_uri="/data/milvus")
    monkeypatch.delenv("RAGPAUSE_INDEX")
    embedded = local_index(Settings(data_dir=tmp_path / "faiss"), embedder)
    assert isinstance(embedded, DocumentIndex)
    embedded.close()
