"""What the decode loop yields, in order: tokens, pauses with their evidence, resumes, done."""

from __future__ import annotations

from dataclasses import dataclass, field

from query_unit.types import TokenStep
from retrieval.types import Passage


@dataclass(frozen=True, slots=True)
class TokenEvent:
    text: str  # may be "" while a multi-byte character is incomplete
    step: TokenStep
    # Tokens of the current segment (this one included) that no pause will withdraw: text
    # up to there is final, the rest is a draft a pause may take back.
    committed: int = 0


@dataclass(frozen=True, slots=True)
class PauseEvent:
    reason: str
    query: str
    retracted: str  # draft text withdrawn: it is regenerated after the evidence
    kept_tokens: int = 0  # tokens of the current segment that stay


@dataclass(frozen=True, slots=True)
class EvidenceEvent:
    query: str
    passages: tuple[Passage, ...]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ResumeEvent:
    kept_tokens: int  # answer tokens that survived the rollback
    evidence_tokens: int  # tokens the evidence block added to the context


@dataclass(frozen=True, slots=True)
class NoticeEvent:
    """Answer text that is not a fresh token: held-back text, or the service's own note
    (e.g. that a search failed)."""

    text: str


@dataclass(frozen=True, slots=True)
class DoneEvent:
    text: str
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int
    evaluated_tokens: int  # every token run through the model this turn, prompt included
    reused_tokens: int  # prompt tokens served from the KV cache of an earlier turn
    searches: int
    sources: tuple[Passage, ...] = field(default=())


Event = TokenEvent | PauseEvent | EvidenceEvent | ResumeEvent | NoticeEvent | DoneEvent
