"""What crosses the boundary between the decode loop and the query unit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retrieval.types import Passage


@dataclass(frozen=True, slots=True)
class FollowUp:
    """What came before the question in a conversation. A follow-up ("what are its strings made
    of?") names its subject only in an earlier question, and an earlier answer drawn from
    sources says the subject is one the model needed them for."""

    topic: str  # the earlier question(s), most recent first
    sourced: bool = False  # an earlier answer cited sources


@dataclass(frozen=True, slots=True)
class TokenStep:
    """One decoding step as the query unit sees it: the chosen token and how sure the model was."""

    token_id: int
    text: str
    prob: float
    entropy: float
    margin: float  # probability of the best token minus the second best
    top: tuple[tuple[int, float], ...]  # the k most likely (token id, probability), best first
    hidden: np.ndarray | None = None  # the final hidden state that chose it, where the backend gives it


@dataclass(frozen=True, slots=True)
class QuestionSignals:
    """The question's tokens and the model's log-probability of each, read in context: a name
    the model never saw is improbable; a word the prompt defined earlier is not."""

    pieces: tuple[str, ...]
    logprobs: tuple[float, ...]
    # The final hidden state at the end of the prompt, the one that picks the first answer
    # token: what the model "thinks" before it answers, where the backend reports it.
    hidden: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    """The unit's request to stop and look something up.

    `keep_tokens` is how many generated tokens survive: decoding rolls back to there (the start
    of the uncertain sentence) and resumes after the evidence.
    """

    reason: str
    query: str
    keep_tokens: int
    trigger_text: str = ""
    retry: bool = False  # show the evidence already found again instead of searching


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a search gave back: the passages to read, or why there are none."""

    query: str
    passages: tuple[Passage, ...] = ()
    error: str | None = None
    question: str = ""  # the user's question, which the evidence block may restate
    retry: bool = False  # the same evidence again: the model did not use it the first time

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.passages)
