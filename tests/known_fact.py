"""A fact the model knows by a clear margin, for the tests that need a known answer.

A 135M model sits on near ties. Asked "What is the capital of France?" after "You are a
helpful assistant.", the pinned x86-64-v3 build starts "La" (log-probability -1.70) over "The"
(-1.83) and goes on in French, while the v2 and v4 builds start "The": a test built on it passes
or fails by the CPU's kernels. "What is the capital of Japan?" leads by at least 1.7 nats at
every step up to "Tokyo" on all three builds and under every system prompt measured
(bench/system_prompt.py's candidates). Tests that need a known answer ask it, and check the
margin first: a change of model, build or prompt that erodes it fails here, with the numbers,
instead of as a wrong word somewhere else.
"""

from __future__ import annotations

import numpy as np

from service.generator.backend import Backend
from service.generator.chat_template import ChatMessage, ChatTemplate
from service.settings import ModelSettings

# Tests answer under the service's own default system prompt (what users get), whatever the
# environment of the machine running them says.
SYSTEM_PROMPT: str = ModelSettings.model_fields["system_prompt"].default

QUESTION = "What is the capital of Japan?"
ANSWER = "Tokyo"
# Nats between the chosen token and the runner-up. Builds for different instruction sets move
# these log-probabilities by up to ~0.15; half a nat is a lead no rounding overturns.
MIN_MARGIN = 0.5


def greedy_margins(backend: Backend, prompt: list[int], answer: str, max_steps: int = 32) -> list[tuple[str, float]]:
    """Decode greedily from `prompt` until `answer` is written: each piece with its lead in nats."""
    backend.load_prompt(prompt)
    steps: list[tuple[str, float]] = []
    text = ""
    for _ in range(max_steps):
        logits = np.asarray(backend.logits(), dtype=np.float64)
        second, first = np.argpartition(logits, -2)[-2:]
        if logits[second] > logits[first]:
            first, second = second, first
        token = int(first)
        if token in backend.eos_token_ids:
            break
        steps.append((backend.piece(token), float(logits[first] - logits[second])))
        backend.append([token])
        text += steps[-1][0]
        if answer in text:
            return steps
    raise AssertionError(f"the model's greedy answer {text!r} does not name {answer!r}")


def assert_decisive(
    backend: Backend, system_prompt: str | None, question: str = QUESTION, answer: str = ANSWER
) -> list[tuple[str, float]]:
    """The greedy answer to `question` names `answer`, and no step on the way is a near tie;
    returns each step's piece and lead."""
    template = ChatTemplate(backend)
    steps = greedy_margins(backend, template.prompt([ChatMessage("user", question)], system_prompt), answer)
    piece, lead = min(steps, key=lambda s: s[1])
    assert lead >= MIN_MARGIN, (
        f"{question!r} with system prompt {system_prompt!r}: {piece!r} leads by only {lead:.2f} nats "
        f"(< {MIN_MARGIN}), so a test that needs this answer would hang on a near tie; pick another fact"
    )
    return steps
