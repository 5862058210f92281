"""The reader: from retrieved passages, keep the few sentences that answer the query.

Evidence is expensive (about 240 prompt tokens/s here), so a pause gets only the best
sentences within a token budget, each still tied to the passage it came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from query_unit.content_words import REFERRING_WORDS, words
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


def _points_back(sentence: str) -> bool:
    """The sentence opens with a word that needs the one before it ("It", "They", "This …")."""
    first = re.match(r"[A-Za-z]+", sentence)
    return bool(first) and first.group(0).lower() in REFERRING_WORDS


def _words(text: str) -> set[str]:
    return {w for w in words(text) if len(w) > 3}


def read(
    query: str,
    passages: list[Passage],
    embed: Embed,
    count_tokens: Callable[[str], int],
    budget: int,
    margin: float = 0.15,
) -> list[Passage]:
    """The best sentences across passages within `budget` tokens, grouped back by passage in
    their original order; a passage keeps its source, title and scores.

    A kept sentence that opens by pointing back ("It was designed by
    …", "They settled …") brings the sentence before it: without it, "it" names nothing."""
    pieces = [(n, i, s) for n, p in enumerate(passages) for i, s in enumerate(_sentences(p.text))]
    if not pieces:
        return []
    # A sentence is embedded with its passage's title: "It was invented in 1642" must still
    # be about the harp.
    titled = [f"{passages[n].title}: {s}" if passages[n].title else s for n, _, s in pieces]
    vectors = embed([query] + titled)
    similarity = vectors[1:] @ vectors[0]
    # Shared rare words count too (a date's sentence shares "invented" with the question),
    # and passage rank breaks near-ties.
    query_words = _words(query)
    overlap = np.array([len(query_words & _words(s)) / max(len(query_words), 1) for _, _, s in pieces])
    score = similarity + 0.2 * overlap - 0.01 * np.array([n for n, _, _ in pieces])
    chosen: list[int] = []
    used = 0
    best = float(score.max())
    position = {(n, i): k for k, (n, i, _) in enumerate(pieces)}
    for k in np.argsort(-score):
        if chosen and score[k] < best - margin:
            break  # far below the best sentence: a distractor more than an answer
        if k in chosen:
            continue  # already brought in as another sentence's antecedent
        group = [int(k)]
        n, i, sentence = pieces[k]
        before = position.get((n, i - 1))
        if before is not None and before not in chosen and _points_back(sentence):
            group.insert(0, before)
        cost = sum(count_tokens(pieces[g][2]) for g in group)
        if used + cost > budget and len(group) > 1 and chosen:
            group, cost = group[1:], count_tokens(sentence)  # no room for both: the sentence alone
        if used + cost > budget:
            if chosen:
                continue  # a shorter sentence further down may still fit
            # Even the best sentence is over budget: keep it cut to its first words.
            group, cost = [int(k)], count_tokens(sentence)
            words = sentence.split()
            keep = max(1, int(len(words) * budget / max(cost, 1)))
            pieces[k] = (n, i, " ".join(words[:keep]) + " …")
        chosen.extend(group)
        used += min(cost, budget)
    by_passage: dict[int, list[tuple[int, str]]] = {}
    for k in chosen:
        n, i, sentence = pieces[k]
        by_passage.setdefault(n, []).append((i, sentence))
    return [replace(passages[n], text=" ".join(s for _, s in sorted(by_passage[n]))) for n in sorted(by_passage)]
