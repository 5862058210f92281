"""The learned unit: two logistic regressions over the same signals as the heuristic unit,
one on the question before the first token, one on each content token while writing. Where
the backend reports hidden states, a few of their principal components (fitted in training)
join the signals: the state at the end of the prompt for the question, the state that chose
each token for the token.

Its knob is a target retrieval rate, not a raw threshold: training stores, for rates from
5% to 95%, the score threshold at which that share of held-out turns searched, and the unit
interpolates. Without a target it uses the threshold at which few of the training turns that
needed no document searched. Weights are plain JSON (query_unit/weights/learned_unit.json), built by
`python -m scripts.train_unit`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from query_unit.features import QuestionFeatures
from query_unit.turn import BaseTurn, UnitTools
from query_unit.types import FollowUp, TokenStep

WEIGHTS = Path(__file__).resolve().parent / "weights" / "learned_unit.json"


@dataclass(frozen=True)
class LinearModel:
    """Standardize, then logistic regression."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def from_json(cls, d: dict) -> LinearModel:
        return cls(np.array(d["mean"]), np.array(d["scale"]), np.array(d["coef"]), float(d["intercept"]))

    def to_json(self) -> dict:
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
        }

    def score(self, features: list[float]) -> float:
        z = float(((np.asarray(features) - self.mean) / self.scale) @ self.coef + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


@dataclass(frozen=True)
class Projection:
    """Principal components of the hidden states seen in training: hundreds of numbers become
    a few the small training set can support."""

    mean: np.ndarray
    components: np.ndarray  # (k, hidden size)

    @classmethod
    def fit(cls, states: np.ndarray, k: int) -> Projection:
        mean = states.mean(axis=0)
        _, _, vt = np.linalg.svd(states - mean, full_matrices=False)
        return cls(mean, vt[:k])

    @classmethod
    def from_json(cls, d: dict | None) -> Projection | None:
        return None if d is None else cls(np.array(d["mean"]), np.array(d["components"]))

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "components": self.components.tolist()}

    def apply(self, state: np.ndarray | None) -> list[float]:
        """The state's coordinates; a backend without hidden states reads as the training mean."""
        if state is None or state.shape != self.mean.shape:
            return [0.0] * len(self.components)
        return (self.components @ (state - self.mean)).tolist()


@dataclass(frozen=True)
class LearnedWeights:
    gate: LinearModel
    token: LinearModel
    rates: list[float]
    thresholds: list[float]
    default_rate: float
    gate_hidden: Projection | None = None
    token_hidden: Projection | None = None
    default_threshold: float | None = None

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> LearnedWeights:
        d = json.loads(Path(path).read_text())
        return cls(
            LinearModel.from_json(d["gate"]),
            LinearModel.from_json(d["token"]),
            d["calibration"]["rates"],
            d["calibration"]["thresholds"],
            float(d["default_rate"]),
            Projection.from_json(d.get("gate_hidden")),
            Projection.from_json(d.get("token_hidden")),
            d.get("default_threshold"),
        )

    @property
    def uses_hidden_states(self) -> bool:
        return self.gate_hidden is not None or self.token_hidden is not None

    def gate_features(self, features: list[float], hidden: np.ndarray | None) -> list[float]:
        return features + (self.gate_hidden.apply(hidden) if self.gate_hidden else [])

    def token_features(self, features: list[float], hidden: np.ndarray | None) -> list[float]:
        return features + (self.token_hidden.apply(hidden) if self.token_hidden else [])

    def threshold(self, rate: float) -> float:
        """Score above which about `rate` of held-out turns searched (thresholds fall as rates rise)."""
        return float(np.interp(rate, self.rates, self.thresholds))


class LearnedUnit:
    name = "learned"

    def __init__(
        self, tools: UnitTools, weights: LearnedWeights | None = None, target_rate: float | None = None
    ) -> None:
        self.tools = tools
        self.weights = weights or LearnedWeights.load()
        self.target_rate = self.weights.default_rate if target_rate is None else target_rate
        default = self.weights.default_threshold
        self.threshold = (
            default if target_rate is None and default is not None else self.weights.threshold(self.target_rate)
        )

    def begin_turn(self, question: str, follow_up: FollowUp | None = None) -> LearnedTurn:
        return LearnedTurn(self.tools, question, self, follow_up)


class LearnedTurn(BaseTurn):
    def __init__(self, tools: UnitTools, question: str, unit: LearnedUnit, follow_up: FollowUp | None = None) -> None:
        super().__init__(tools, question, follow_up)
        self.unit = unit

    def gate(self, features: QuestionFeatures) -> str | None:
        weights = self.unit.weights
        p = weights.gate.score(weights.gate_features(features.as_list(), features.hidden))
        return f"the question likely needs evidence (p={p:.2f})" if p >= self.unit.threshold else None

    def check(self, step: TokenStep, features: list[float]) -> str | None:
        weights = self.unit.weights
        p = weights.token.score(weights.token_features(features, step.hidden))
        return f"{step.text.strip()!r} looks made up (p={p:.2f})" if p >= self.unit.threshold else None
