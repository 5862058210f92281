"""Plain records that retrieval hands to its callers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Passage:
    """A piece of a document that answered a query, with where it came from and how well it matched.

    `score` ranks results within one search (its scale depends on the method); `similarity`
    is the cosine between query and passage embeddings, comparable across searches.
    """

    text: str
    source: str
    title: str = ""
    score: float = 0.0
    doc_id: str = ""
    chunk_id: int = -1
    similarity: float | None = None
    start: int = 0
    end: int = 0
    collection: str = "default"  # the local collection it came from ("default" for web results too)


def similarity(passage: Passage) -> float:
    """Cosine to the query where the searcher gives it (comparable across searches), else its score."""
    return passage.similarity if passage.similarity is not None else passage.score


class Searcher(Protocol):
    """Anything that answers a query with passages (the local index, the web, both)."""

    def search(self, query: str, k: int = 4) -> list[Passage]: ...
