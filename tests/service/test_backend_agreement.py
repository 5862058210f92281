"""The two engines run the same model: same tokens in, (nearly) the same choices out.

llama.cpp multiplies Q4_1 weights with 8-bit-quantized activations while transformers runs
the dequantized weights in float32, so near-ties can break differently (seen: a lead of 0.44
nats in llama.cpp went the other way in transformers); where llama.cpp leads by a clear margin
(tests/known_fact.MIN_MARGIN) they must agree.
"""

from __future__ import annotations

import numpy as np

from service.generator.chat_template import ChatMessage, ChatTemplate
from service.generator.sampling import Sampler, SamplingParams
from tests.known_fact import ANSWER, MIN_MARGIN, QUESTION, SYSTEM_PROMPT, assert_decisive

PROMPTS = [
    QUESTION,
    "Explain photosynthesis in two sentences.",
    "Give me three tips for learning to cook.",
    "Where was Zorblax Quintaro born?",
]


def test_same_tokenizer(llama_backend, hf_backend) -> None:
    for text in ["Hello world", " café ünïcode 42", "<|im_start|>user\nx", "line\n\nbreak\ttab"]:
        assert llama_backend.tokenize(text) == hf_backend.tokenize(text)
        assert llama_backend.tokenize(text, special=True) == hf_backend.tokenize(text, special=True)


def test_same_greedy_answer_on_a_confident_prompt(llama_backend, hf_backend) -> None:
    # Each engine's every step up to the answer leads by a clear margin (checked, with the
    # numbers if not): then the two must choose the same tokens.
    answers = [
        [piece for piece, _ in assert_decisive(backend, SYSTEM_PROMPT)] for backend in (llama_backend, hf_backend)
    ]
    assert answers[0] == answers[1] and ANSWER in "".join(answers[0])


def test_teacher_forced_choices_agree(llama_backend, hf_backend) -> None:
    sampler = Sampler(SamplingParams())
    total = agree = sure = sure_agree = 0
    for text in PROMPTS:
        prompt = ChatTemplate(llama_backend).prompt([ChatMessage("user", text)], SYSTEM_PROMPT)
        llama_backend.load_prompt(prompt)
        hf_backend.load_prompt(prompt)
        for _ in range(40):
            second, first = np.sort(np.asarray(llama_backend.logits(), dtype=np.float64))[-2:]
            a, b = llama_backend.step(sampler), hf_backend.step(sampler)
            total += 1
            agree += a.token_id == b.token_id
            if first - second >= MIN_MARGIN:
                sure += 1
                sure_agree += a.token_id == b.token_id
            if a.token_id in llama_backend.eos_token_ids:
                break
            llama_backend.append([a.token_id])  # both follow llama.cpp's choice
            hf_backend.append([a.token_id])
    # (x86-64-v2, v3, v4 builds: 73 to 85 sure steps, all agreeing; 0.935 to 0.961 overall.)
    assert sure_agree == sure > 50
    assert agree / total >= 0.9
