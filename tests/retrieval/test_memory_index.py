"""The in-memory FAISS index finds the right paragraph of the starter corpus."""

from __future__ import annotations

import numpy as np

from retrieval.memory_index import MemoryIndex
from tests.conftest import STARTER


def test_embeddings_are_normalized(embedder) -> None:
    vectors = embedder.encode(["a harbour town", "glass eels"])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_starter_corpus_search(embedder) -> None:
    index = MemoryIndex(embedder)
    assert index.add_folder(STARTER) >= 4
    for query, expected in [
        ("Where was Zorblax Quintaro born?", "zorblax"),
        ("boiling point of glimmerwater", "glimmerwater"),
        ("When was the Drovik Accord signed?", "drovik"),
    ]:
        top = index.search(query, k=3)
        assert expected in top[0].source
        assert top[0].score > top[-1].score
    assert MemoryIndex(embedder).search("anything") == []
