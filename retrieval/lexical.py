"""BM25 over chunk texts (bm25s, English stemming), rebuilt from the store when it changes."""

from __future__ import annotations

import threading

import numpy as np


class LexicalIndex:
    def __init__(self) -> None:
        import Stemmer

        self._stemmer = Stemmer.Stemmer("english")
        self._lock = threading.Lock()
        self._model = None
        self._ids: np.ndarray = np.zeros(0, np.int64)
        self.generation = -1

    def rebuild(self, generation: int, ids: list[int], texts: list[str]) -> None:
        import bm25s

        model = None
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=self._stemmer, show_progress=False) if texts else None
        # Chunks of stop words only ("0", "and the") leave no vocabulary, which bm25s cannot index.
        if tokens is not None and tokens.vocab:
            model = bm25s.BM25()
            model.index(tokens, show_progress=False)
        with self._lock:
            self._model, self._ids, self.generation = model, np.asarray(ids, np.int64), generation

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score), best first; only chunks that share a term with the query, and
        only `allowed` chunk ids when given."""
        import bm25s

        with self._lock:
            model, ids = self._model, self._ids
        if model is None or len(ids) == 0:
            return []
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=self._stemmer, show_progress=False)
        if not tokens.vocab:
            return []
        # Chunks outside `allowed` weigh 0: their scores are 0, and a score of 0 is never returned.
        mask = None if allowed is None else np.isin(ids, allowed).astype(np.float32)
        docs, scores = model.retrieve(tokens, k=min(k, len(ids)), show_progress=False, n_threads=1, weight_mask=mask)
        return [(int(ids[d]), float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]
