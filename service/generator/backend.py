"""The generator interface both backends implement: a token sequence held in a KV cache.

A backend only evaluates tokens, truncates its cache and reports next-token logits; this
base class owns the bookkeeping (which tokens are cached, how many were ever evaluated) so
that pausing, rolling back and resuming behave the same on every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from query_unit.types import TokenStep
from service.generator.sampling import Sampler


@dataclass(frozen=True, slots=True)
class PromptLoad:
    reused: int  # prompt tokens served from the cache rather than evaluated
    scores: list[float] = field(default_factory=list)  # log-probabilities, when asked for


def _log_prob(logits: np.ndarray, token: int) -> float:
    peak = float(logits.max())
    return float(logits[token]) - peak - float(np.log(np.exp(logits - peak).sum()))


class ContextOverflow(ValueError):
    """The tokens would not fit in the model's context window."""


class Backend(ABC):
    name: str = "backend"

    def __init__(self, n_ctx: int) -> None:
        self.n_ctx = n_ctx
        self.tokens: list[int] = []  # exactly what the KV cache holds, in order
        self.n_evaluated = 0  # every token ever run through the model: proves reuse
        self._logits_fresh = False
        # Engines that can report their final hidden state set this when asked to at load;
        # each step then carries it (the learned query unit reads it).
        self.hidden_states = False

    # --- what a backend provides -------------------------------------------------------
    @abstractmethod
    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        """Text to ids. With special=False, control-token spellings stay plain text."""

    @abstractmethod
    def token_bytes(self, token_id: int) -> bytes:
        """The raw bytes one token stands for (a piece of a UTF-8 character possibly)."""

    @property
    @abstractmethod
    def eos_token_ids(self) -> frozenset[int]:
        """Tokens that end the assistant's turn."""

    @property
    @abstractmethod
    def n_vocab(self) -> int:
        """How many token ids there are (the length of the logits)."""

    @abstractmethod
    def _evaluate(self, tokens: list[int], all_logits: bool = False) -> np.ndarray | None:
        """Run the model over tokens placed right after `self.tokens` (cache already trimmed).

        With all_logits, return every position's next-token logits, shape (len(tokens), vocab).
        """

    @abstractmethod
    def _truncate(self, n: int) -> None:
        """Drop cache entries at positions >= n."""

    @abstractmethod
    def _last_logits(self) -> np.ndarray:
        """Next-token logits after the last evaluated token (float32, one per vocabulary entry)."""

    def _last_hidden(self) -> np.ndarray | None:
        """The final layer's hidden state at the last evaluated position, where the backend has it."""
        return None

    def share_cores(self, sharing: bool) -> None:  # noqa: B027 optional hook: a no-op unless a backend overrides it
        """Another heavy job (an ingestion) runs on the same cores: use fewer threads meanwhile.
        Engines without a thread setting ignore it."""

    # --- shared behaviour --------------------------------------------------------------
    def special_id(self, text: str) -> int:
        ids = self.tokenize(text, special=True)
        if len(ids) != 1:
            raise ValueError(f"{text!r} is not a single special token in this vocabulary")
        return ids[0]

    def append(self, tokens: list[int], score: bool = False) -> list[float] | None:
        """Prefill: evaluate tokens after what is cached.

        With score, also return each token's log-probability given all before it (the first
        one's is NaN when nothing before it has fresh logits): the model's surprise at them.
        """
        if not tokens:
            return [] if score else None
        if len(self.tokens) + len(tokens) > self.n_ctx:
            raise ContextOverflow(f"{len(self.tokens) + len(tokens)} tokens exceed the context window of {self.n_ctx}")
        first = _log_prob(self._last_logits(), tokens[0]) if score and self._logits_fresh else float("nan")
        rows = self._evaluate(list(tokens), all_logits=score)
        self.tokens.extend(tokens)
        self.n_evaluated += len(tokens)
        self._logits_fresh = True
        if not score:
            return None
        assert rows is not None
        return [first] + [_log_prob(rows[i], tokens[i + 1]) for i in range(len(tokens) - 1)]

    def rollback(self, n: int) -> None:
        """Keep the first n cached tokens; forget the rest."""
        if n < 0 or n > len(self.tokens):
            raise ValueError(f"cannot roll back to {n}: {len(self.tokens)} tokens are cached")
        if n == len(self.tokens):
            return
        self._truncate(n)
        del self.tokens[n:]
        self._logits_fresh = False

    def load_prompt(self, tokens: list[int], score_from: int | None = None) -> PromptLoad:
        """Make the cache hold exactly `tokens`, reusing the longest cached prefix.

        With score_from, the tokens from there on are (re-)evaluated and scored (see append).
        """
        if not tokens:
            raise ValueError("empty prompt")
        shared = 0
        for a, b in zip(self.tokens, tokens):
            if a != b:
                break
            shared += 1
        # The last prompt token is always evaluated: its logits pick the first answer token.
        shared = min(shared, len(tokens) - 1)
        if score_from is None:
            self.rollback(shared)
            self.append(tokens[shared:])
            return PromptLoad(reused=shared)
        shared = min(shared, score_from)
        self.rollback(shared)
        self.append(tokens[shared:score_from])
        scores = self.append(tokens[score_from:], score=True) or []
        return PromptLoad(reused=shared, scores=scores)

    def logits(self) -> np.ndarray:
        if not self.tokens:
            raise RuntimeError("nothing evaluated yet")
        if not self._logits_fresh:
            # After a bare rollback the backend has no logits for the new last position.
            last = self.tokens[-1]
            self.rollback(len(self.tokens) - 1)
            self.append([last])
        return self._last_logits()

    def step(
        self, sampler: Sampler, banned: frozenset[int] = frozenset(), counts: Mapping[int, int] | None = None
    ) -> TokenStep:
        """Choose the next token (not yet appended) with its confidence signals; `counts`: the
        answer's tokens so far, for the sampler's penalties."""
        step = sampler.step(self.logits(), self.piece, banned, counts)
        return replace(step, hidden=self.hidden()) if self.hidden_states else step

    def hidden(self) -> np.ndarray | None:
        """A copy of the hidden state that produced the current logits (None if not reported)."""
        if not self.hidden_states:
            return None
        self.logits()  # the same position as the logits, re-run after a bare rollback
        state = self._last_hidden()
        return None if state is None else np.array(state, dtype=np.float32)

    def piece(self, token_id: int) -> str:
        return self.token_bytes(token_id).decode("utf-8", errors="replace")
