"""kill -9 during ingestion: every acknowledged document survives and the index loads."""

from __future__ import annotations

import random

import numpy as np

from retrieval.document_index import DocumentIndex
from tests.conftest import REPO
from tests.retrieval.ingest_worker import ingest_until_killed


def test_acknowledged_documents_survive_kill_9(tmp_path, embedder) -> None:
    cache = REPO / "index_data" / "embedders"
    rng = random.Random(1234)
    acked: set[str] = set()
    for round_ in range(3):
        before = len(acked)
        args = [str(tmp_path), str(cache), str(round_ * 5000), "5000", "8", "300"]
        ingest_until_killed(args, rng.uniform(0.3, 2.0), acked)
        assert before < len(acked) < 5000 * (round_ + 1), f"round {round_}: not killed mid-ingestion"

        index = DocumentIndex(tmp_path, embedder, hnsw_threshold=300)
        stored = {d.id for d in index.list(limit=10_000)}
        assert acked <= stored, f"lost after kill -9: {sorted(acked - stored)[:5]}"
        # The vector index matches the store exactly: nothing half-written was loaded.
        assert len(index.vectors) == index.stats()["chunks"]
        # The loaded vectors are exactly the committed ones, and each sampled document is
        # found by its own text (near-twins such as doc-559 and doc-5599 rank close together).
        for doc_id in rng.sample(sorted(acked), 5):
            rows = index.store._connect().execute("SELECT id, vector FROM chunks WHERE doc_id=?", (doc_id,)).fetchall()
            ids = [r[0] for r in rows]
            committed = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            np.testing.assert_array_equal(index.vectors.reconstruct(ids), committed)
            text = f"{index.get(doc_id).title}\n{index.store.document_text(doc_id)}"
            assert doc_id in {h.doc_id for h in index.search(text, k=20, mode="dense")}
        assert index.store._connect().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        index.store.close()
