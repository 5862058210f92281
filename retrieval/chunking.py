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
# Letters with dots between them: U.S., e.g., a.m., Ph.D.
_DOTTED = re.compile(r"(?:[A-Za-z]{1,2}\.)+[A-Za-z]{1,2}\.?")
# Words that begin sentences far more often than they follow an abbreviation ("… in the U.S. The
# company …"): after a dotted abbreviation only they start a new sentence ("the U.S. Army" goes on).
_STARTERS = frozenset(
    "the a an it its this that these those there they he she we i in on at after before but however "
    "his her their our when while as if since during by for from with".split()
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+|\n{2,}|\n(?=\s*(?:[-*•]|\d+[.)])\s)")


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    start: int  # character offsets into the document text
    end: int


def ends_in_abbreviation(text: str, next_word: str = "") -> bool:
    """Whether the full stop that ends `text` belongs to an abbreviation or an initial ("Dr.",
    "J.", "e.g.", "U.S.") rather than ending a sentence; `next_word` is the word after it."""
    before = text.rstrip("\"')]").split()
    if not before or not before[-1].endswith("."):
        return False
    word = before[-1].lstrip("\"'([")
    last = word.rstrip(".").lower()
    if last in _ABBREVIATIONS or len(last) == 1:
        return True  # "Dr. Quintaro", "J. Smith"
    if _DOTTED.fullmatch(word) and word.count(".") >= 2:
        return next_word.lower() not in _STARTERS
    return False


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, whitespace trimmed. A sentence ends at a terminal mark
    followed by whitespace, never inside a number (61.1%, 3.11), an abbreviation (U.S., e.g.,
    Dr.) or a URL, and not where the next word goes on in lowercase ('"Why?" she asked')."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        following = re.match(r"[\"'(\[]*(\w*)", text[match.end() :])
        next_word = following.group(1) if following else ""
        if text[match.start() - 1 : match.start()] == "." and ends_in_abbreviation(
            text[start : match.start()], next_word
        ):
            continue
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
