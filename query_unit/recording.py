"""A unit that never pauses but writes down what the others decide on: the features of the
question and of every content token it was asked about, with the model's hidden state at each
where the backend reports it. It records training data."""

from __future__ import annotations

import numpy as np

from query_unit.features import QuestionFeatures
from query_unit.turn import BaseTurn, UnitTools
from query_unit.types import FollowUp, TokenStep


class RecordingUnit:
    name = "recording"

    def __init__(self, tools: UnitTools) -> None:
        self.tools = tools
        self.turns: list[RecordingTurn] = []

    def begin_turn(self, question: str, follow_up: FollowUp | None = None) -> RecordingTurn:
        turn = RecordingTurn(self.tools, question, follow_up)
        self.turns.append(turn)
        return turn


class RecordingTurn(BaseTurn):
    def __init__(self, tools: UnitTools, question: str, follow_up: FollowUp | None = None) -> None:
        super().__init__(tools, question, follow_up)
        self.recorded_question: list[float] = []
        self.token_features: list[list[float]] = []
        self.question_hidden: np.ndarray | None = None
        self.token_hidden: list[np.ndarray | None] = []

    def gate(self, features: QuestionFeatures) -> str | None:
        self.recorded_question = features.as_list()
        self.question_hidden = features.hidden
        return None

    def check(self, step: TokenStep, features: list[float]) -> str | None:
        self.token_features.append(features)
        self.token_hidden.append(step.hidden)
        return None
