"""Fit the learned unit from recorded turns (see service/train_unit.py, which records them).

A turn is {"id", "label", "question": [features], "tokens": [[features], …]}; label 1 means
evidence fixed the answer or brought the answer the model could not give. Turns are split
by id into training and held-out parts; the held-out part calibrates the retrieval-rate knob.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from query_unit.features import QUESTION_FEATURES, TOKEN_FEATURES
from query_unit.learned import WEIGHTS, LinearModel

RATES = [round(0.05 * i, 2) for i in range(1, 20)]


def fit(rows: np.ndarray, labels: np.ndarray) -> LinearModel:
    from sklearn.linear_model import LogisticRegression

    mean = rows.mean(axis=0)
    scale = rows.std(axis=0) + 1e-6
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
    model.fit((rows - mean) / scale, labels)
    return LinearModel(mean, scale, model.coef_[0], float(model.intercept_[0]))


def turn_score(gate: LinearModel, token: LinearModel, turn: dict) -> float:
    return max([gate.score(turn["question"])] + [token.score(t) for t in turn["tokens"]])


def train(turns: list[dict], held_out_share: float = 0.25, seed: int = 0) -> dict:
    rng = random.Random(seed)
    order = sorted(turns, key=lambda t: t["id"])
    rng.shuffle(order)
    cut = int(len(order) * (1 - held_out_share))
    fit_turns, held_out = order[:cut], order[cut:]

    gate = fit(np.array([t["question"] for t in fit_turns]), np.array([t["label"] for t in fit_turns]))
    token_rows = [(f, t["label"]) for t in fit_turns for f in t["tokens"]]
    token = fit(np.array([f for f, _ in token_rows]), np.array([y for _, y in token_rows]))

    scores = np.array([turn_score(gate, token, t) for t in held_out])
    labels = np.array([t["label"] for t in held_out])
    # The score at which a share `rate` of held-out turns search.
    thresholds = [float(np.quantile(scores, 1 - rate)) for rate in RATES]
    positive_rate = float(labels.mean())
    searched = scores >= float(np.quantile(scores, 1 - positive_rate))
    return {
        "version": 1,
        "question_features": list(QUESTION_FEATURES),
        "token_features": list(TOKEN_FEATURES),
        "gate": gate.to_json(),
        "token": token.to_json(),
        "calibration": {"rates": RATES, "thresholds": thresholds},
        # By default, search as often as evidence helped on held-out turns.
        "default_rate": round(positive_rate, 3),
        "held_out": {
            "turns": len(held_out),
            "positive_rate": positive_rate,
            "recall_at_default": float(searched[labels == 1].mean()) if labels.any() else None,
            "false_search_rate_at_default": float(searched[labels == 0].mean()) if (labels == 0).any() else None,
        },
        "trained_on": {"turns": len(fit_turns), "token_rows": len(token_rows)},
    }


def main(data: Path, out: Path = WEIGHTS) -> dict:
    turns = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    weights = train(turns)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(weights, indent=1) + "\n")
    return weights
