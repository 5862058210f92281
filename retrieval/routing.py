"""Where a query goes: the local index first, the web when it is configured and the local
index has nothing close enough, or when the question asks for current information."""

from __future__ import annotations

import re

from retrieval.types import Passage, Searcher, similarity

_CURRENT = re.compile(
    r"\b(today|tonight|now|currently|current|latest|newest|recent|recently|this (week|month|year)|news|right now)\b",
    re.IGNORECASE,
)


def asks_for_current_information(query: str) -> bool:
    """A local index is a snapshot: questions about now go to the web as well."""
    return bool(_CURRENT.search(query))


class RoutedSearcher:
    """`always_web`: ask both every time (a request's "both"), keeping even weak local hits."""

    def __init__(
        self, local: Searcher, web: Searcher | None = None, weak_similarity: float = 0.45, always_web: bool = False
    ) -> None:
        self.local = local
        self.web = web
        self.weak_similarity = weak_similarity
        self.always_web = always_web

    def search(self, query: str, k: int = 4) -> list[Passage]:
        """Local hits if one is strong; else local and web together. A web failure is raised
        only when the local index had nothing usable, so that the answer can say so."""
        local = self.local.search(query, k)
        strong = local if self.always_web else [p for p in local if similarity(p) >= self.weak_similarity]
        if self.web is None or (strong and not self.always_web and not asks_for_current_information(query)):
            return local
        try:
            web = self.web.search(query, k)
        except Exception:
            if strong:
                return local
            raise
        return strong + web
