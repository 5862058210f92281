"""Which tokens carry facts (names, numbers, rare words) and which are glue."""

from __future__ import annotations

FUNCTION_WORDS = frozenset(
    """a an the and or but nor so yet of in on at to for from by with without about into onto over
    under between among through during before after above below up down out off again further then
    once here there when where why how all any both each few more most other some such no not only
    own same than too very can will just should now is are was were be been being have has had having
    do does did doing i me my we our you your he him his she her it its they them their what which who
    whom this that these those am as if while because until also may might must would could shall
    one two known called named located born made used often usually many much well like""".split()
)


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
