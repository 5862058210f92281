"""Hidden states for the learned unit: reported by both engines, alike, and free of side effects."""

from __future__ import annotations

import numpy as np
import pytest

from query_unit.recording import RecordingUnit
from query_unit.turn import UnitTools
from service.generator.chat_template import ChatMessage, ChatTemplate
from service.generator.decode_loop import GenerationParams, generate
from service.generator.llama_backend import LlamaCppBackend
from service.generator.model_files import default_gguf_path
from service.generator.sampling import Sampler, SamplingParams
from tests.known_fact import ANSWER, QUESTION, SYSTEM_PROMPT, assert_decisive

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def llama_hidden() -> LlamaCppBackend:
    return LlamaCppBackend(default_gguf_path(), n_ctx=2048, hidden_states=True)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_hidden_states_leave_the_logits_and_the_answer_unchanged(llama_backend, llama_hidden) -> None:
    prompt = llama_backend.tokenize(PROMPT * 20)  # a long prefill: only its last state is kept
    answers = []
    for engine in (llama_backend, llama_hidden):
        engine.rollback(0)
        if engine is llama_hidden:
            engine.load_prompt(prompt)
        else:
            # The hidden-state engine evaluates a prompt's last token in a batch of its own (the
            # only position whose state is read); batches of other sizes round differently, so
            # the plain engine is given the same batches: then the logits must be the same bits.
            engine.load_prompt(prompt[:-1])
            engine.append(prompt[-1:])
        first_logits = engine.logits().copy()
        sampler, tokens = Sampler(SamplingParams()), []
        for _ in range(12):
            step = engine.step(sampler)
            tokens.append(step.token_id)
            if engine is llama_hidden:
                assert step.hidden is not None and step.hidden.shape == (576,) and np.isfinite(step.hidden).all()
            else:
                assert step.hidden is None
            engine.append([step.token_id])
        answers.append((first_logits, tokens))
    assert np.array_equal(answers[0][0], answers[1][0])
    assert answers[0][1] == answers[1][1]


def test_the_state_after_a_rollback_is_the_state_that_was_there(llama_hidden) -> None:
    engine = llama_hidden
    engine.load_prompt(engine.tokenize(PROMPT))
    before = engine.hidden()
    engine.append(engine.tokenize(" Paris, a city of lights."))
    after = engine.hidden()
    assert _cosine(before, after) < 0.95  # a different position says something else
    engine.rollback(len(engine.tokenize(PROMPT)))
    assert _cosine(engine.hidden(), before) > 0.999


def test_both_engines_report_the_same_state(llama_hidden, hf_backend) -> None:
    hf_backend.hidden_states = True
    try:
        tokens = llama_hidden.tokenize(PROMPT)
        llama_hidden.load_prompt(tokens)
        hf_backend.rollback(0)
        hf_backend.load_prompt(tokens)
        # Q4_1 with 8-bit activations against the dequantized weights in fp32: close, not equal.
        assert _cosine(llama_hidden.hidden(), hf_backend.hidden()) > 0.99
    finally:
        hf_backend.hidden_states = False


def test_the_query_unit_sees_the_state_before_the_answer_and_at_each_token(llama_hidden, starter_index) -> None:
    template = ChatTemplate(llama_hidden)
    messages = [ChatMessage("user", "Where was Zorblax Quintaro born?")]
    prompt = template.prompt(messages, SYSTEM_PROMPT)
    recorder = RecordingUnit(UnitTools(starter_index, lambda s: len(s.split()), local=starter_index))
    events = list(
        generate(
            llama_hidden,
            template,
            prompt,
            recorder.begin_turn(messages[0].content),
            GenerationParams(max_tokens=24),
            question_span=template.question_span(prompt, messages),
        )
    )
    turn = recorder.turns[-1]
    assert events and turn.question_hidden is not None and turn.question_hidden.shape == (576,)
    assert turn.token_hidden and all(h is not None and h.shape == (576,) for h in turn.token_hidden)
    # Each content token's state is its own: not one vector repeated.
    assert len({h.tobytes() for h in turn.token_hidden}) == len(turn.token_hidden)


@pytest.mark.parametrize("question, searches", [("Where was Zorblax Quintaro born?", True), (QUESTION, False)])
def test_the_learned_unit_decides_with_the_real_hidden_state(llama_hidden, starter_index, question, searches) -> None:
    from query_unit.learned import LearnedUnit
    from service.generator.events import DoneEvent

    if not searches:
        assert_decisive(llama_hidden, SYSTEM_PROMPT)
    template = ChatTemplate(llama_hidden)
    messages = [ChatMessage("user", question)]
    prompt = template.prompt(messages, SYSTEM_PROMPT)
    unit = LearnedUnit(UnitTools(starter_index, lambda s: len(s.split()), local=starter_index))
    assert unit.weights.uses_hidden_states
    events = list(
        generate(
            llama_hidden,
            template,
            prompt,
            unit.begin_turn(question),
            GenerationParams(max_tokens=40),
            question_span=template.question_span(prompt, messages),
        )
    )
    done = events[-1]
    assert isinstance(done, DoneEvent) and (done.searches > 0) == searches
    from service.generator.events import EvidenceEvent

    evidence = [p.text for e in events if isinstance(e, EvidenceEvent) for p in e.passages]
    assert any("Vellmora" in text for text in evidence) if searches else (ANSWER in done.text), (done.text, evidence)
