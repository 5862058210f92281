"""Sentence-aware chunks with character offsets.

all-MiniLM-L6-v2 reads at most 256 word pieces, so a chunk aims at ~150 words and never
exceeds ~200: everything in it is embedded. Neighbouring chunks share one sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc e.g i.e no fig inc ltd co corp mt ft approx dept est gen gov sgt col".split()
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+|\n{2,}|\n(?=\s*(?:[-*•]|\d+[.)])\s)")


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    start: int  # character offsets into the document text
    end: int


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, whitespace trimmed."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        before = text[start : match.start()].rstrip("\"')]").split()
        last = before[-1].rstrip(".").lower() if before else ""
        if text[match.start() - 1 : match.start()] == "." and (last in _ABBREVIATIONS or len(last) == 1):
            continue  # "Dr. Quintaro", "J. Smith": not the end of a sentence
        if "\n" not in match.group() and text[match.end() : match.end() + 1].islower():
            continue  # '"Why?" she asked': the sentence goes on
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def _split_long(text: str, start: int, end: int, max_words: int) -> list[tuple[int, int]]:
    """Cut a run-on sentence at word boundaries."""
    words = list(re.finditer(r"\S+", text[start:end]))
    return [
        (start + words[i].start(), start + words[min(i + max_words, len(words)) - 1].end())
        for i in range(0, len(words), max_words)
    ]


def chunk_text(text: str, target_words: int = 150, max_words: int = 200, overlap_sentences: int = 1) -> list[Chunk]:
    spans: list[tuple[int, int]] = []
    for s, e in sentence_spans(text):
        if len(text[s:e].split()) > max_words:
            spans.extend(_split_long(text, s, e, max_words))
        else:
            spans.append((s, e))
    sizes = [len(text[s:e].split()) for s, e in spans]

    chunks: list[Chunk] = []
    i = 0
    while i < len(spans):
        j, words = i, 0
        while j < len(spans) and (j == i or words + sizes[j] <= max_words) and words < target_words:
            words += sizes[j]
            j += 1
        start, end = spans[i][0], spans[j - 1][1]
        chunks.append(Chunk(text[start:end], start, end))
        if j >= len(spans):
            break
        i = max(j - overlap_sentences, i + 1)
    return chunks


def join_chunks(rows: Iterable[tuple[str, int, int]]) -> str:
    """A document again from its chunks' (text, start, end), in order: overlaps are dropped by
    their offsets, and a gap between two chunks becomes one space."""
    out: list[str] = []
    upto = 0
    for text, start, end in rows:
        if end <= upto:
            continue
        skip = max(0, upto - start)
        if start > upto and out:
            out.append(" ")
        out.append(text[skip:])
        upto = end
    return "".join(out)
