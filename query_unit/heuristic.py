"""The heuristic unit: rules over the model's own signals and one cheap look at the index.

Before the first token, search when
- the question holds a word the model finds very surprising (an invented or obscure name; a
  word the prompt defines is read at its last, unsurprising mention);
- or the local index holds a close match for the question: a detail of a familiar subject
  ("Who was the Norse leader?") surprises the model at no word, yet it cannot answer it, while
  a document the user added answers it (one embedding lookup, a few milliseconds);
- or a moderately surprising word and a fair match come together.
While writing: pause on a content token chosen with low probability, stricter once evidence
is in the context (the model paraphrases evidence less surely) and when the question was all
familiar words (an unsure word is then more likely wording than missing knowledge).
"""

from __future__ import annotations

from dataclasses import dataclass

from query_unit.features import QuestionFeatures
from query_unit.turn import BaseTurn, UnitTools
from query_unit.types import FollowUp, TokenStep


@dataclass(frozen=True, slots=True)
class HeuristicConfig:
    prob_threshold: float = 0.05  # training controls paused at 0.06-0.10 on elaborations
    after_evidence_factor: float = 0.5
    # A question whose every word the model expected is about something it knows: an unsure
    # word in the answer is then more likely wording than missing knowledge.
    familiar_surprisal: float = 11.0
    familiar_factor: float = 0.4
    # Chosen on the training split (invented entities, training controls, SQuAD tune articles,
    # mixed into 5,000 MS MARCO passages): invented names cost 20-58 nats; control questions'
    # most surprising word 4-14 nats ("frozen" in "What is frozen water called?": 13.6), SQuAD
    # questions' 9-18 (10th-90th percentile). The closest passage: controls 0.30-0.52 (cosine,
    # 10th-90th percentile), SQuAD 0.41-0.73. Together they searched 7% of training controls and
    # 86% of tune SQuAD questions before the first token (11% and 83% held out).
    gate_surprisal: float = 16.0
    gate_similarity: float = 0.55
    gate_surprisal_with_match: float = 10.0
    gate_fair_similarity: float = 0.42


class HeuristicUnit:
    name = "heuristic"

    def __init__(self, tools: UnitTools, config: HeuristicConfig = HeuristicConfig()) -> None:
        self.tools = tools
        self.config = config

    def begin_turn(self, question: str, follow_up: FollowUp | None = None) -> HeuristicTurn:
        return HeuristicTurn(self.tools, question, self.config, follow_up)


class HeuristicTurn(BaseTurn):
    def __init__(
        self, tools: UnitTools, question: str, config: HeuristicConfig, follow_up: FollowUp | None = None
    ) -> None:
        super().__init__(tools, question, follow_up)
        self.rules = config

    def gate(self, features: QuestionFeatures) -> str | None:
        surprisal = features.max_surprisal
        if surprisal >= self.rules.gate_surprisal:
            return f"the question names something unfamiliar ({surprisal:.0f} nats)"
        match = features.local_similarity
        if match >= self.rules.gate_similarity:
            return f"the index holds a close match for the question (similarity {match:.2f})"
        if surprisal >= self.rules.gate_surprisal_with_match and match >= self.rules.gate_fair_similarity:
            return f"an unusual word ({surprisal:.0f} nats) the index matches (similarity {match:.2f})"
        return None

    def check(self, step: TokenStep, features: list[float]) -> str | None:
        threshold = self.rules.prob_threshold * (self.rules.after_evidence_factor if self.shown else 1.0)
        familiar = (
            self.question_features is not None and self.question_features.max_surprisal < self.rules.familiar_surprisal
        )
        if familiar:
            threshold *= self.rules.familiar_factor
        if step.prob < threshold:
            return f"unsure of {step.text.strip()!r} (p={step.prob:.2f})"
        return None
