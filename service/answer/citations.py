"""Citations: which sources a finished sentence of the answer draws on, marked `[n]`.

A sentence cites the sources that hold the most of its own words, counting only words that
are neither in the question nor function words: "born in Vellmora" cites the passage that
says Vellmora, not every passage that repeats the question's name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from query_unit.content_words import FUNCTION_WORDS, words
from retrieval.chunking import ends_in_abbreviation
from retrieval.types import Passage

# The sentence's closing marks ("...", "?!" as one), before any closing quotes or brackets.
_TERMINAL = re.compile(r"(?:\.{3}|…|[.!?]+)(?=[\"')\]]*\s*$)")


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
    """The sentence with `[1][2]` before its final punctuation (or at its end, after a closing
    abbreviation)."""
    if not numbers:
        return sentence
    marker = "".join(f"[{n}]" for n in numbers)
    body = sentence.rstrip()
    trailing = sentence[len(body) :]
    found = _TERMINAL.search(body)
    if found and not ends_in_abbreviation(body):  # "in the U.S. [1]", never "U.S [1]."
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


def source_name(passage: Passage) -> str:
    """What identifies a source to a reader: its title with the file or URL it came from, the
    title alone when nothing else names it (a JSON upload), the collection where that is all
    that tells two such titles apart, never an empty "()"."""
    title, source = passage.title.strip(), passage.source.strip()
    if title and source and title != source:
        return f"{title} ({source})"
    if title or source:
        named = title or source
        return (
            named
            if passage.collection == "default" or not passage.doc_id
            else f"{named} (collection {passage.collection})"
        )
    return f"document {passage.doc_id}" if passage.doc_id else "untitled"


def source_list(passages: Sequence[Passage]) -> str:
    """The closing list: one line per source, `[n] what identifies it`."""
    lines = [f"[{n}] {source_name(p)}" for n, p in enumerate(passages, start=1)]
    return "\n\nSources:\n" + "\n".join(lines) if lines else ""
