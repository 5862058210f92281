"""Citations: which sources a finished sentence of the answer draws on, marked `[n]`.

A sentence cites the sources that hold the most of its own words, counting only words that
are neither in the question nor function words: "born in Vellmora" cites the passage that
says Vellmora, not every passage that repeats the question's name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from query_unit.content_words import FUNCTION_WORDS, words

_TERMINAL = re.compile(r"[.!?](?=[\"')\]]*\s*$)")


class Citer:
    def __init__(self, question: str) -> None:
        self.ignored = set(words(question)) | FUNCTION_WORDS
        self.sources: list[set[str]] = []  # each source's words, in citation-number order

    def add_source(self, text: str) -> None:
        self.sources.append(set(words(text)))

    def cite(self, sentence: str) -> list[int]:
        """Numbers (from 1) of the sources this sentence draws on; [] when none."""
        own = set(words(sentence)) - self.ignored
        overlap = [len(own & source) for source in self.sources]
        best = max(overlap, default=0)
        return [n for n, count in enumerate(overlap, start=1) if best and count == best]


def mark(sentence: str, numbers: Sequence[int]) -> str:
    """The sentence with `[1][2]` before its final punctuation (or at its end)."""
    if not numbers:
        return sentence
    marker = "".join(f"[{n}]" for n in numbers)
    body = sentence.rstrip()
    trailing = sentence[len(body) :]
    found = _TERMINAL.search(body)
    if found:
        return f"{body[: found.start()]} {marker}{body[found.start() :]}{trailing}"
    return f"{body} {marker}{trailing}"


_MARKERS = re.compile(r" ?(\[\d+\])+(?=[.!?\"')\]]*(\s|$))")
_LIST = re.compile(r"\n\nSources:\n(\[\d+\] [^\n]*(\n|$))+\s*$")


def has_source_list(text: str) -> bool:
    """Whether an earlier answer ends with our list of sources: it was drawn from them."""
    return _LIST.search(text) is not None


def strip_citations(text: str) -> str:
    """An earlier answer as the model wrote it: without our markers and source list, which a
    small model would otherwise imitate (with made-up sources) in its next answer."""
    return _MARKERS.sub("", _LIST.sub("", text))


def source_list(titles: Sequence[tuple[str, str]]) -> str:
    """The closing list: one line per source, `[n] title (where it came from)`."""
    lines = [
        f"[{n}] {title or source} ({source})" if title and title != source else f"[{n}] {source}"
        for n, (title, source) in enumerate(titles, start=1)
    ]
    return "\n\nSources:\n" + "\n".join(lines) if lines else ""
