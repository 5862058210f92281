"""A small exact FAISS index held in memory: enough to exercise the decode loop end to end."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from retrieval.embedder import Embedder
from retrieval.types import Passage


@dataclass(frozen=True, slots=True)
class _Entry:
    text: str
    source: str
    title: str


class MemoryIndex:
    """Inner-product search over normalized vectors, one entry per paragraph."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._index = faiss.IndexFlatIP(embedder.dim)
        self._entries: list[_Entry] = []

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, texts: list[str], source: str, title: str = "") -> None:
        texts = [t.strip() for t in texts if t.strip()]
        if not texts:
            return
        self._index.add(self.embedder.encode(texts))
        self._entries.extend(_Entry(t, source, title) for t in texts)

    def add_folder(self, folder: Path) -> int:
        """Index every .md/.txt file in a folder, a paragraph per entry; returns files read."""
        files = sorted(p for p in Path(folder).glob("*") if p.suffix in {".md", ".txt"})
        for path in files:
            text = path.read_text(encoding="utf-8")
            lines = text.strip().splitlines()
            title = lines[0].lstrip("# ").strip() if lines else path.stem
            paragraphs = [p for p in text.split("\n\n") if not p.lstrip().startswith("#")]
            self.add(paragraphs, source=str(path), title=title)
        return len(files)

    def search(self, query: str, k: int = 4) -> list[Passage]:
        if not self._entries:
            return []
        scores, ids = self._index.search(self.embedder.encode([query]), min(k, len(self._entries)))
        return [
            Passage(text=e.text, source=e.source, title=e.title, score=float(s))
            for s, i in zip(scores[0], ids[0])
            if i >= 0
            for e in [self._entries[i]]
        ]
