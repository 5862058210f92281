"""A thin wrapper over FAISS: exact search while small, HNSW once large; ids are chunk ids.

HNSW cannot remove vectors, so removals become tombstones that searches skip, and the graph
is rebuilt once tombstones pass a share of it. Files are written to a temporary name and
renamed, with the store generation they reflect beside them: a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import faiss
import numpy as np


class VectorIndex:
    def __init__(self, dim: int, hnsw_threshold: int = 50_000, hnsw_m: int = 32, ef_search: int = 64) -> None:
        self.dim = dim
        self.hnsw_threshold = hnsw_threshold
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self._index = self._new("flat")
        self.kind = "flat"
        self._tombstones: set[int] = set()

    def _new(self, kind: str) -> faiss.Index:
        if kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        hnsw = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 80
        hnsw.hnsw.efSearch = self.ef_search
        return faiss.IndexIDMap2(hnsw)

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._tombstones)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
        if self.kind == "flat" and len(self) >= self.hnsw_threshold:
            self._rebuild("hnsw")

    def remove(self, ids: list[int]) -> None:
        if not ids:
            return
        if self.kind == "flat":
            self._index.remove_ids(np.asarray(ids, dtype=np.int64))
            return
        self._tombstones.update(ids)
        if len(self._tombstones) > 0.2 * self._index.ntotal:
            self._rebuild("hnsw" if len(self) >= self.hnsw_threshold else "flat")

    def _rebuild(self, kind: str) -> None:
        """Copy the live vectors into a fresh index of the given kind."""
        ntotal = int(self._index.ntotal)
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        vectors = self._index.index.reconstruct_n(0, ntotal) if ntotal else np.zeros((0, self.dim), np.float32)
        live = np.array([i not in self._tombstones for i in ids], dtype=bool)
        fresh = self._new(kind)
        if live.any():
            fresh.add_with_ids(np.ascontiguousarray(vectors[live]), ids[live])
        self._index, self.kind, self._tombstones = fresh, kind, set()

    def search(self, vectors: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids, best first; -1 pads missing results. `allowed`: search only these ids
        (FAISS skips the others during the search, so the k found are the best allowed ones)."""
        if self._index.ntotal == 0:
            n = len(vectors)
            return np.zeros((n, k), np.float32), -np.ones((n, k), np.int64)
        extra = min(len(self._tombstones), 4 * k)
        query = np.ascontiguousarray(vectors, dtype=np.float32)
        if allowed is None:
            scores, ids = self._index.search(query, k + extra)
        else:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            if self.kind == "flat":
                params = faiss.SearchParameters(sel=selector)
            else:
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.ef_search, k + extra))
            scores, ids = self._index.search(query, k + extra, params=params)
        if self._tombstones:
            for row in range(len(ids)):
                keep = [j for j, i in enumerate(ids[row]) if i not in self._tombstones][:k]
                pad = k - len(keep)
                scores[row, :k] = np.concatenate([scores[row, keep], np.zeros(pad, np.float32)])
                ids[row, :k] = np.concatenate([ids[row, keep], -np.ones(pad, np.int64)])
        return scores[:, :k], ids[:, :k]

    def reconstruct(self, ids: list[int]) -> np.ndarray:
        """The stored vectors of these ids."""
        if not ids:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._index.reconstruct(int(i)) for i in ids])

    # --- files ---------------------------------------------------------------------------
    def save(self, path: Path, generation: int) -> None:
        path = Path(path)
        if self._tombstones:
            self._rebuild(self.kind)
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _write_json(
            path.with_name(path.name + ".json"),
            {"generation": generation, "kind": self.kind, "count": len(self), "dim": self.dim},
        )

    @classmethod
    def load(cls, path: Path, generation: int, **options: int) -> VectorIndex | None:
        """The saved index if it reflects exactly this store generation, else None."""
        path = Path(path)
        try:
            stamp = json.loads(path.with_name(path.name + ".json").read_text())
            if stamp.get("generation") != generation:
                return None
            raw = faiss.read_index(str(path))
        except (OSError, ValueError, RuntimeError):
            return None
        if raw.ntotal != stamp.get("count"):
            return None
        index = cls(int(stamp["dim"]), **options)
        index._index, index.kind = raw, stamp["kind"]
        if index.kind == "hnsw":
            faiss.downcast_index(raw.index).hnsw.efSearch = index.ef_search
        return index


def _write_json(path: Path, value: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)
