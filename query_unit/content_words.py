"""Which tokens carry facts (names, numbers, rare words) and which are glue."""

from __future__ import annotations

import re

FUNCTION_WORDS = frozenset(
    """a an the and or but nor so yet of in on at to for from by with without about into onto over
    under between among through during before after above below up down out off again further then
    once here there when where why how all any both each few more most other some such no not only
    own same than too very can will just should now is are was were be been being have has had having
    do does did doing i me my we our you your he him his she her it its they them their what which who
    whom this that these those am as if while because until also may might must would could shall
    one two known called named located born made used often usually many much well like""".split()
)


_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """The text's words, lowercased, in order: how every part of the service splits words."""
    return _WORD.findall(text.lower())


def is_content_piece(piece: str) -> bool:
    """True for a token that starts or continues a name, number or other content word."""
    word = piece.strip()
    if not word:
        return False
    if any(ch.isdigit() for ch in word):
        return True
    if not any(ch.isalpha() for ch in word):
        return False
    return word.lower() not in FUNCTION_WORDS


def ends_sentence(piece: str) -> bool:
    stripped = piece.rstrip(" ")
    return stripped.endswith((".", "!", "?", "\n", ":", ";")) and not stripped.endswith("..")


# Words by which a question points back at a subject named earlier in the conversation.
REFERRING_WORDS = frozenset("it its they them their he him his she her this these those".split())


def refers_back(question: str) -> bool:
    """Whether the question itself (its last sentence: what comes before may define its own
    words, "We call our robot Bexley, and it was built...") points back at an earlier subject:
    a referring pronoun ("In what year was it invented?"), or too few words to name one ("Why?")."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", question.strip()) if s]
    words = re.findall(r"[a-z]+", sentences[-1].lower()) if sentences else []
    return len(words) <= 2 or not REFERRING_WORDS.isdisjoint(words)
