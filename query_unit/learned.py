"""The learned unit: two logistic regressions over the same signals as the heuristic unit,
one on the question before the first token, one on each content token while writing.

Its knob is a target retrieval rate, not a raw threshold: training stores, for rates from
5% to 95%, the score threshold at which that share of held-out turns searched, and the unit
interpolates. Weights are plain JSON (query_unit/weights/learned_unit.json), built by
`python -m service.train_unit`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from query_unit.features import QuestionFeatures
from query_unit.turn import Turn, UnitTools
from query_unit.types import TokenStep

WEIGHTS = Path(__file__).resolve().parent / "weights" / "learned_unit.json"


@dataclass(frozen=True)
class LinearModel:
    """Standardize, then logistic regression."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def from_json(cls, d: dict) -> "LinearModel":
        return cls(np.array(d["mean"]), np.array(d["scale"]), np.array(d["coef"]), float(d["intercept"]))

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(), "intercept": self.intercept}

    def score(self, features: list[float]) -> float:
        z = float(((np.asarray(features) - self.mean) / self.scale) @ self.coef + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


@dataclass(frozen=True)
class LearnedWeights:
    gate: LinearModel
    token: LinearModel
    rates: list[float]
    thresholds: list[float]
    default_rate: float

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> "LearnedWeights":
        d = json.loads(Path(path).read_text())
        return cls(
            LinearModel.from_json(d["gate"]),
            LinearModel.from_json(d["token"]),
            d["calibration"]["rates"],
            d["calibration"]["thresholds"],
            float(d["default_rate"]),
        )

    def threshold(self, rate: float) -> float:
        """Score above which about `rate` of held-out turns searched (thresholds fall as rates rise)."""
        return float(np.interp(rate, self.rates, self.thresholds))


class LearnedUnit:
    name = "learned"

    def __init__(self, tools: UnitTools, weights: LearnedWeights | None = None, target_rate: float | None = None) -> None:
        self.tools = tools
        self.weights = weights or LearnedWeights.load()
        self.target_rate = self.weights.default_rate if target_rate is None else target_rate
        self.threshold = self.weights.threshold(self.target_rate)

    def begin_turn(self, question: str) -> "LearnedTurn":
        return LearnedTurn(self.tools, question, self)


class LearnedTurn(Turn):
    def __init__(self, tools: UnitTools, question: str, unit: LearnedUnit) -> None:
        super().__init__(tools, question)
        self.unit = unit

    def gate(self, features: QuestionFeatures) -> str | None:
        p = self.unit.weights.gate.score(features.as_list())
        return f"the question likely needs evidence (p={p:.2f})" if p >= self.unit.threshold else None

    def check(self, step: TokenStep, features: list[float]) -> str | None:
        p = self.unit.weights.token.score(features)
        return f"{step.text.strip()!r} looks made up (p={p:.2f})" if p >= self.unit.threshold else None
