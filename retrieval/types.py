"""Plain records that retrieval hands to its callers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Passage:
    """A piece of a document that answered a query, with where it came from and how well it matched."""

    text: str
    source: str
    title: str = ""
    score: float = 0.0
    doc_id: str = ""
