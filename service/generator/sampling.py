"""Turn next-token logits into a chosen token and the confidence signals the query unit reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from query_unit.types import TokenStep

# Top-p looks at this many candidates first; a full sort of the vocabulary costs milliseconds.
_TOP_P_CANDIDATES = 1024


# Temperatures this low are greedy decoding in all but name; dividing logits by them would
# overflow (a fuzzer sent 1e-300).
GREEDY_BELOW = 1e-3


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How to pick tokens. temperature 0 means greedy."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    top_k_signals: int = 5
    # OpenAI's penalties: each time a token already occurs in the answer lowers its logit by
    # frequency_penalty, and occurring at all by presence_penalty (negative values favour it).
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, added to its logit)

    @property
    def penalizes(self) -> bool:
        return bool(self.frequency_penalty or self.presence_penalty)


class Sampler:
    """Chooses tokens; the signals always describe the model's own (untempered) distribution."""

    def __init__(self, params: SamplingParams) -> None:
        self.params = params
        # NumPy wants a non-negative seed; a negative one keeps its own stream (two's complement).
        self._rng = np.random.default_rng(None if params.seed is None else params.seed % 2**64)
        self._bias_ids = np.array([t for t, _ in params.logit_bias], dtype=np.int64)
        self._bias = np.array([b for _, b in params.logit_bias], dtype=np.float32)

    def step(
        self,
        logits: np.ndarray,
        piece: Callable[[int], str],
        banned: frozenset[int] = frozenset(),
        counts: Mapping[int, int] | None = None,
    ) -> TokenStep:
        """`counts`: how often each token occurs in the answer so far, for the penalties. They
        and the logit bias change which token is chosen, never the signals."""
        if banned:
            logits = logits.copy()
            logits[list(banned)] = -1e30  # finite: exp() gives 0 and 0 * -1e30 stays 0
        k = self.params.top_k_signals
        top_ids = np.argpartition(logits, -k)[-k:]
        top_ids = top_ids[np.argsort(logits[top_ids])[::-1]]
        peak = float(logits[top_ids[0]])
        shifted = logits - peak
        weights = np.exp(shifted)
        total = float(weights.sum())
        # H = log Z - E[logit - peak]; avoids a second pass with log().
        entropy = float(np.log(total) - float(np.dot(weights, shifted)) / total)
        top_probs = np.exp(logits[top_ids] - peak) / total

        choice = self._penalized(logits, counts) if counts and self.params.penalizes else logits
        if len(self._bias_ids):
            choice = choice.copy() if choice is logits else choice
            choice[self._bias_ids] += self._bias
        if self.params.temperature < GREEDY_BELOW:
            chosen = int(top_ids[0]) if choice is logits else int(np.argmax(choice))
        else:
            chosen = self._sample(choice, float(choice.max()))
        prob = float(np.exp(float(logits[chosen]) - peak) / total)
        margin = float(top_probs[0] - top_probs[1]) if k > 1 else float(top_probs[0])
        return TokenStep(
            token_id=chosen,
            text=piece(chosen),
            prob=prob,
            entropy=entropy,
            margin=margin,
            top=tuple((int(i), float(p)) for i, p in zip(top_ids, top_probs)),
        )

    def _penalized(self, logits: np.ndarray, counts: Mapping[int, int]) -> np.ndarray:
        ids = np.fromiter((t for t, n in counts.items() if n > 0), dtype=np.int64)
        if len(ids) == 0:
            return logits
        n = np.fromiter((counts[int(t)] for t in ids), dtype=np.float32, count=len(ids))
        out = logits.copy()
        out[ids] -= self.params.frequency_penalty * n + self.params.presence_penalty
        return out

    def _sample(self, logits: np.ndarray, peak: float) -> int:
        t = self.params.temperature
        top_p = self.params.top_p
        if top_p >= 1.0:
            scaled = np.exp((logits - peak) / t)
            return int(self._rng.choice(len(logits), p=scaled / scaled.sum()))
        n = min(_TOP_P_CANDIDATES, len(logits))
        cand = np.argpartition(logits, -n)[-n:]
        cand = cand[np.argsort(logits[cand])[::-1]]
        full = np.exp((logits - peak) / t)
        z = float(full.sum())
        probs = full[cand] / z
        cum = np.cumsum(probs)
        cut = int(np.searchsorted(cum, top_p)) + 1
        if cut > n:  # the candidates do not reach top_p: fall back to the whole vocabulary
            order = np.argsort(full)[::-1]
            cum = np.cumsum(full[order]) / z
            cut = int(np.searchsorted(cum, top_p)) + 1
            cand, probs = order, full[order] / z
        kept = probs[:cut]
        return int(cand[int(self._rng.choice(cut, p=kept / kept.sum()))])
