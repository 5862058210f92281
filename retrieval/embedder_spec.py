"""What an index records about the embedder that made its vectors, and when two are the same.

Vectors from two embedders cannot be compared, and "two embedders" includes the same model
on another backend: int8 ONNX and float32 differ a little, enough to move rankings. So the
record holds the model (its folder's name and a digest of its weights: the package that
ships all-MiniLM-L6-v2 calls its folder just `model`), the backend and the dimension, plus
the path it was loaded from, so that the old embedder can be loaded again while a
re-embedding runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from retrieval.embedder import Embedder

# What a model's vectors depend on: its weights and its architecture's configuration.
_WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "config.json")


@dataclass(frozen=True, slots=True)
class EmbedderSpec:
    model: str  # where it was loaded from (a folder, or a hub name for the torch backend)
    name: str  # the folder's name
    weights: str  # digest of the weights ("" for a hub name, or a record from before digests)
    backend: str  # torch, onnx or onnx-int8 ("" in a record from before backends)
    dim: int

    @property
    def label(self) -> str:
        """Short and readable, for /health and the logs."""
        parts = [self.name, self.backend or "?", str(self.dim)]
        return ":".join(parts) + (f"@{self.weights[:8]}" if self.weights else "")

    @property
    def legacy(self) -> bool:
        """A record written before backends and digests were: only `name:dim`."""
        return not self.backend

    def same_vectors(self, other: EmbedderSpec) -> bool:
        """Whether vectors from `other` may stand beside this one's. A legacy record can only
        say name and dimension; those are taken as the same embedder (else every index built
        before the record grew would be re-embedded once at upgrade)."""
        if self.legacy or other.legacy:
            return (self.name, self.dim) == (other.name, other.dim)
        return (self.name, self.weights, self.backend, self.dim) == (
            other.name,
            other.weights,
            other.backend,
            other.dim,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, record: str) -> EmbedderSpec:
        """A record as stored: JSON, or the legacy `name:dim`."""
        if record.startswith("{"):
            return cls(**json.loads(record))
        name, _, dim = record.rpartition(":")
        return cls(model="", name=name, weights="", backend="", dim=int(dim))


def spec_of(embedder: Embedder) -> EmbedderSpec:
    path = Path(embedder.model_name)
    return EmbedderSpec(
        model=embedder.model_name,
        name=path.name,
        weights=weights_digest(path),
        backend=embedder.backend,
        dim=int(embedder.dim),
    )


def weights_digest(folder: Path) -> str:
    """sha256 of the model's weights and configuration ("" when it is not a local folder).
    Reading the weights once more costs little beside loading them (0.1 s for MiniLM's 90 MB)."""
    if not folder.is_dir():
        return ""
    files = sorted({f for pattern in _WEIGHTS for f in folder.glob(pattern) if f.is_file()})
    stamps = tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return _digest(stamps)


@lru_cache(maxsize=16)
def _digest(stamps: tuple[tuple[str, int, int], ...]) -> str:
    """Keyed by path, size and mtime: each index opened in one process hashes a model once."""
    digest = hashlib.sha256()
    for path, _, _ in stamps:
        digest.update(Path(path).name.encode() + b"\0")
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:16]
