"""The reader: from retrieved passages, keep the few sentences that answer the query.

Evidence is expensive (about 240 prompt tokens/s here), so a pause gets only the best
sentences within a token budget, each still tied to the passage it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from retrieval.chunking import sentence_spans
from retrieval.types import Passage

Embed = Callable[[list[str]], np.ndarray]


def _sentences(text: str) -> list[str]:
    out = []
    for start, end in sentence_spans(text):
        sentence = text[start:end].strip()
        if sentence and not sentence.startswith("#"):  # a Markdown heading repeats the title
            out.append(sentence)
    return out


def read(
    query: str,
    passages: list[Passage],
    embed: Embed,
    count_tokens: Callable[[str], int],
    budget: int,
) -> list[Passage]:
    """The best sentences across passages within `budget` tokens, grouped back by passage in
    their original order; a passage keeps its source, title and scores."""
    pieces = [(n, i, s) for n, p in enumerate(passages) for i, s in enumerate(_sentences(p.text))]
    if not pieces:
        return []
    vectors = embed([query] + [s for _, _, s in pieces])
    similarity = vectors[1:] @ vectors[0]
    # Passage rank breaks near-ties: the retriever's order carries the lexical evidence too.
    score = similarity - 0.01 * np.array([n for n, _, _ in pieces])
    chosen: list[int] = []
    used = 0
    for k in np.argsort(-score):
        cost = count_tokens(pieces[k][2])
        if used + cost > budget:
            if chosen:
                continue  # a shorter sentence further down may still fit
            # Even the best sentence is over budget: keep it cut to its first words.
            words = pieces[k][2].split()
            keep = max(1, int(len(words) * budget / max(cost, 1)))
            pieces[k] = (pieces[k][0], pieces[k][1], " ".join(words[:keep]) + " …")
        chosen.append(int(k))
        used += min(cost, budget)
    by_passage: dict[int, list[tuple[int, str]]] = {}
    for k in chosen:
        n, i, sentence = pieces[k]
        by_passage.setdefault(n, []).append((i, sentence))
    return [
        replace(passages[n], text=" ".join(s for _, s in sorted(by_passage[n])))
        for n in sorted(by_passage)
    ]
