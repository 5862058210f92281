"""Strings a request may carry that no document or prompt can hold.

JSON can spell a lone surrogate ("\\ud800"), which is no Unicode character: it cannot be
encoded, tokenized or stored. A NUL character is no text either. Both are refused with a
message that names the field and the place, before anything tries to use them.
"""

from __future__ import annotations


def text_problem(value: str, what: str) -> str | None:
    """Why `value` cannot be used as text (naming it `what`), or None when it can."""
    for at, char in enumerate(value):
        if "\ud800" <= char <= "\udfff":
            return f"{what} holds a lone surrogate (U+{ord(char):04X}) at character {at}, which is not valid Unicode"
        if char == "\x00":
            return f"{what} holds a NUL character at character {at}"
    return None
