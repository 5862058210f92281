"""Always retrieve: search with the question before answering, never pause after. The
baseline the other units must beat, and the per-request 'always' mode."""

from __future__ import annotations

from query_unit.features import QuestionFeatures
from query_unit.turn import BaseTurn, UnitTools
from query_unit.types import FollowUp


class AlwaysRetrieveUnit:
    name = "always"

    def __init__(self, tools: UnitTools) -> None:
        self.tools = tools

    def begin_turn(self, question: str, follow_up: FollowUp | None = None) -> AlwaysTurn:
        return AlwaysTurn(self.tools, question, follow_up)


class AlwaysTurn(BaseTurn):
    def gate(self, features: QuestionFeatures) -> str | None:
        return "retrieval is always on"

    def _retry_open(self) -> bool:
        return False  # the baseline searches once, before answering, and never pauses after
