"""The narrow interface the decode loop talks to. `query_unit` never imports `service`."""

from __future__ import annotations

from typing import Protocol

from query_unit.types import Evidence, FollowUp, Pause, QuestionSignals, TokenStep


class Turn(Protocol):
    """Watches one answer being written and says when to stop and look something up."""

    def before_generation(self, question: QuestionSignals | None) -> Pause | None:
        """A chance to search before the first token, seeing how surprising the question was."""

    def observe(self, step: TokenStep) -> Pause | None:
        """Called with each chosen token before it is kept; a Pause withdraws it."""

    def gather(self, pause: Pause) -> Evidence:
        """Search for the pause's query and keep what answers it. Never raises."""

    def committed(self) -> int:
        """Tokens of the current segment (since the last evidence block) no pause will withdraw."""

    def resumed(self, kept_tokens: int) -> None:
        """Decoding goes on after an evidence block; the draft kept `kept_tokens` tokens."""


class QueryUnit(Protocol):
    def begin_turn(self, question: str, follow_up: FollowUp | None = None) -> Turn: ...
