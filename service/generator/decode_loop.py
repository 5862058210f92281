"""The decode loop: one token at a time, with the pause as an ordinary branch.

On a pause the KV cache is rolled back to the start of the uncertain sentence, an evidence
block is appended, and decoding resumes from there. Tokens before the rollback point stay
in the cache and are never evaluated again. The pause's bookkeeping is the PauseMachine's,
shared with the remote loop; `KVResumer` is how this loop resumes.
"""

from __future__ import annotations

import codecs
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from query_unit.protocol import Turn
from query_unit.types import Evidence, Pause, QuestionSignals
from service.generator.backend import Backend
from service.generator.chat_template import ChatTemplate
from service.generator.events import Event, NoticeEvent
from service.generator.evidence_block import DEFAULT_STYLE, EvidenceStyle, evidence_block
from service.generator.pause_machine import PauseMachine
from service.generator.sampling import Sampler, SamplingParams


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """One answer's parameters, for the local and the remote loop alike (a remote server
    applies the sampling and the stop strings itself and shows the evidence its own way)."""

    max_tokens: int = 256
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stop: tuple[str, ...] = ()
    evidence_style: EvidenceStyle = DEFAULT_STYLE


# Evidence goes in only if the answer still has this many tokens of room after it.
ROOM_AFTER_EVIDENCE = 16
NO_ROOM = "no room left in the context window for what it found"


def generate(
    backend: Backend,
    template: ChatTemplate,
    prompt: Sequence[int],
    turn: Turn | None = None,
    params: GenerationParams = GenerationParams(),
    question_span: tuple[int, int] | None = None,
) -> Iterator[Event]:
    """Answer the prompt, pausing whenever the turn asks to look something up.

    `question_span` marks the question's tokens in the prompt: the model's surprise at them
    is handed to the turn before the first token.
    """
    evaluated_before = backend.n_evaluated
    scored = turn is not None and question_span is not None
    loaded = backend.load_prompt(list(prompt), score_from=question_span[0] if scored else None)
    sampler = Sampler(params.sampling)
    resumer = KVResumer(backend, template, params)
    machine: PauseMachine[int] = PauseMachine(turn, resumer)
    finish = "length"
    # The answer's tokens so far, for frequency and presence penalties: withdrawn ones leave it.
    counts: Counter[int] | None = Counter() if params.sampling.penalizes else None

    question = question_signals(backend, prompt, question_span, loaded.scores) if scored else None
    pause: Pause | None = machine.begin(question)
    while True:
        if pause is not None:
            withdrawn = machine.segment[pause.keep_tokens :]
            resumed = yield from machine.pause(pause)
            if resumed and counts is not None:
                counts.subtract(withdrawn)  # they left the answer; after a failed search they stay in it
            # Resumed after the evidence, or, with nothing new to read, the draft simply goes on.
            pause = None

        if machine.completion_tokens >= params.max_tokens or len(backend.tokens) >= backend.n_ctx:
            break  # "length": the answer's budget or the context window is used up
        # An answer is never empty: right after an evidence block the model may try to stop.
        step = backend.step(sampler, banned=backend.eos_token_ids if machine.empty else frozenset(), counts=counts)
        if step.token_id in backend.eos_token_ids:
            finish = "stop"
            break
        pause = machine.observe(step)
        if pause is not None:
            continue  # the token is withdrawn with the rest of its sentence

        if counts is not None:
            counts[step.token_id] += 1
        visible, hit = resumer.show(step.token_id)
        yield machine.accept(step.token_id, visible, step)  # shown before it is evaluated, as llama.cpp does
        if hit:
            finish = "stop"
            break
        backend.append([step.token_id])

    tail = resumer.stops.flush()
    if tail:
        yield NoticeEvent(text=tail)
    yield from machine.close(
        resumer.stops.segment_text(),
        finish,
        prompt_tokens=len(prompt),
        evaluated_tokens=backend.n_evaluated - evaluated_before,
        reused_tokens=loaded.reused,
    )


class KVResumer:
    """Resumes in place: the KV cache rolls back to the end of the kept draft (or to the
    assistant header, when nothing was answered yet), and the evidence block is appended.
    It also turns token ids into shown text, which starts afresh with each segment."""

    def __init__(self, backend: Backend, template: ChatTemplate, params: GenerationParams) -> None:
        self.backend = backend
        self.template = template
        self.style = params.evidence_style
        self.stops = _StopMatcher(params.stop)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.header = template.assistant_start()
        self.start = len(backend.tokens)  # where the current segment begins in the cache
        # Where the assistant header before the answer starts: evidence found before the first
        # answer token goes there, right after the question (nothing before it is recomputed).
        at = self.start - len(self.header)
        self.header_at: int | None = at if at >= 0 and backend.tokens[at : self.start] == self.header else None
        self._at = 0  # where the admitted block goes
        self._block: list[int] = []

    def text(self, tokens: Sequence[int]) -> str:
        """Decoded together: a character split across tokens comes out whole."""
        return b"".join(self.backend.token_bytes(t) for t in tokens).decode("utf-8", errors="replace")

    def admit(self, evidence: Evidence, kept: Sequence[int], opening: bool) -> Evidence:
        """Evidence that would leave the answer no room in the context stays out, and says so."""
        header_at = self.header_at
        after_question = header_at is not None and opening and self.start == header_at + len(self.header)
        self._at = header_at if after_question and header_at is not None else self.start + len(kept)
        self._block = []
        if evidence.ok:
            self._block = evidence_block(
                self.template, evidence, draft_kept=bool(kept), style=self.style, after_question=after_question
            )
        if self._block and self._at + len(self._block) + ROOM_AFTER_EVIDENCE > self.backend.n_ctx:
            return replace(evidence, passages=(), error=NO_ROOM)
        return evidence

    def resume(self, evidence: Evidence, kept: Sequence[int]) -> int:
        self.backend.rollback(self._at)
        self.backend.append(self._block)
        self.start = len(self.backend.tokens)
        self.header_at = self.start - len(self.header)
        self.decoder.reset()
        self.stops.reset()
        return len(self._block)

    def show(self, token_id: int) -> tuple[str, bool]:
        """The text a new token makes visible, and whether a stop string ended the answer."""
        return self.stops.feed(self.decoder.decode(self.backend.token_bytes(token_id)))


def question_signals(
    backend: Backend, prompt: Sequence[int], span: tuple[int, int], scores: Sequence[float]
) -> QuestionSignals:
    """The question's tokens with their log-probabilities (scored from span[0] on) and the
    hidden state at the end of the prompt, as the query unit's gate reads them."""
    start, end = span
    return QuestionSignals(
        pieces=tuple(backend.piece(t) for t in prompt[start:end]),
        logprobs=tuple(scores[: end - start]),
        hidden=backend.hidden(),
    )


class _StopMatcher:
    """Holds back text that could be the start of a stop string, and cuts at a full match."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.reset()

    def reset(self) -> None:
        self._shown = ""  # segment text already released
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        pending = self._held + text
        for stop in self.stops:
            at = pending.find(stop)
            if at >= 0:
                self._held = ""
                self._shown += pending[:at]
                return pending[:at], True
        keep = max((_overlap(pending, s) for s in self.stops), default=0)
        release, self._held = pending[: len(pending) - keep], pending[len(pending) - keep :]
        self._shown += release
        return release, False

    def flush(self) -> str:
        held, self._held = self._held, ""
        self._shown += held
        return held

    def segment_text(self) -> str:
        return self._shown


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of `text` that begins `stop`."""
    for n in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-n:]):
            return n
    return 0
