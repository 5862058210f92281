"""A scripted engine with a byte tokenizer, for testing the decode loop's mechanics in
milliseconds: it writes a given draft, and a given answer once the evidence it needs is in its
context, with a chosen confidence for each word. The real model's tests show that the loop
works with a real model; these show, exactly and fast, what the loop does with any engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from service.generator.backend import Backend

SPECIALS = {"<|im_start|>": 256, "<|im_end|>": 257, "<|endoftext|>": 258}
VOCAB = 259
ASSISTANT = b"\x00assistant\n"  # how an assistant header reads in `text_of` (256 as \x00)


@dataclass
class Script:
    """What the model writes: `draft` before it has read `needs`, `answer` after (both end the
    turn); words in `unsure` are written with probability `unsure_prob`, everything else with
    `sure_prob`."""

    draft: str
    answer: str = ""
    needs: str = "\uffff"  # text whose presence in the context means the evidence arrived
    unsure: frozenset[str] = frozenset()
    unsure_prob: float = 0.01
    sure_prob: float = 0.99
    calls: list[int] = field(default_factory=list)  # tokens evaluated per call, for the tests


class ScriptedBackend(Backend):
    name = "scripted"

    def __init__(self, script: Script, n_ctx: int = 4096) -> None:
        super().__init__(n_ctx)
        self.script = script
        self._pending: list[int] = []

    # --- the vocabulary: 256 bytes and three markers -----------------------------------
    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        if special and text in SPECIALS:
            return [SPECIALS[text]]
        return list(text.encode("utf-8"))

    def token_bytes(self, token_id: int) -> bytes:
        if token_id < 256:
            return bytes([token_id])
        return next(name for name, i in SPECIALS.items() if i == token_id).encode()

    @property
    def eos_token_ids(self) -> frozenset[int]:
        return frozenset({SPECIALS["<|im_end|>"], SPECIALS["<|endoftext|>"]})

    @property
    def n_vocab(self) -> int:
        return VOCAB

    # --- the "model" -------------------------------------------------------------------
    def _evaluate(self, tokens: list[int], all_logits: bool = False) -> np.ndarray | None:
        self.script.calls.append(len(tokens))
        if not all_logits:
            return None
        before = list(self.tokens)
        return np.stack([self._logits_after(before + tokens[: i + 1]) for i in range(len(tokens))])

    def _truncate(self, n: int) -> None:
        pass  # the script reads `self.tokens`, which the base class trims

    def _last_logits(self) -> np.ndarray:
        return self._logits_after(self.tokens)

    def _logits_after(self, tokens: list[int]) -> np.ndarray:
        """Next-token logits: the next byte of the text the script would be writing."""
        context = bytes(t if t < 256 else 0 for t in tokens)
        at = context.rfind(ASSISTANT)
        written = context[at + len(ASSISTANT) :].decode("utf-8", errors="replace") if at >= 0 else ""
        informed = self.script.needs in context.decode("utf-8", errors="replace")
        target = self.script.answer if informed and self.script.answer else self.script.draft
        logits = np.zeros(VOCAB, dtype=np.float32)
        if not target.startswith(written) or written == target:
            token, prob = SPECIALS["<|im_end|>"], self.script.sure_prob
        else:
            rest = target[len(written) :].encode("utf-8")
            token = rest[0]
            word = _word_at(target, len(written))
            prob = self.script.unsure_prob if word in self.script.unsure else self.script.sure_prob
        # The chosen token gets probability `prob`, the others share the rest equally.
        logits[token] = np.log(prob * (VOCAB - 1) / (1 - prob))
        return logits


def _word_at(text: str, at: int) -> str:
    """The word the character at `at` belongs to ("" for spaces and punctuation)."""
    if at >= len(text) or not text[at].isalnum():
        return ""
    start, end = at, at
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return text[start:end]
