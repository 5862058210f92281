"""The two engines run the same model: same tokens in, (nearly) the same choices out.

llama.cpp multiplies Q4_1 weights with 8-bit-quantized activations while transformers runs
the dequantized weights in float32, so near-ties can break differently; where the model is
sure of its choice (top-2 margin >= 0.1) they must agree.
"""

from __future__ import annotations

from service.generator.chat_template import ChatMessage, ChatTemplate
from service.generator.sampling import Sampler, SamplingParams

PROMPTS = [
    "What is the capital of France?",
    "Explain photosynthesis in two sentences.",
    "Give me three tips for learning to cook.",
    "Where was Zorblax Quintaro born?",
]


def test_same_tokenizer(llama_backend, hf_backend) -> None:
    for text in ["Hello world", " café ünïcode 42", "<|im_start|>user\nx", "line\n\nbreak\ttab"]:
        assert llama_backend.tokenize(text) == hf_backend.tokenize(text)
        assert llama_backend.tokenize(text, special=True) == hf_backend.tokenize(text, special=True)


def test_same_greedy_answer_on_a_confident_prompt(llama_backend, hf_backend) -> None:
    outputs = []
    for backend in (llama_backend, hf_backend):
        prompt = ChatTemplate(backend).prompt([ChatMessage("user", PROMPTS[0])], "You are a helpful assistant.")
        backend.load_prompt(prompt)
        sampler, out = Sampler(SamplingParams()), []
        while len(out) < 32:
            step = backend.step(sampler)
            if step.token_id in backend.eos_token_ids:
                break
            backend.append([step.token_id])
            out.append(step.token_id)
        outputs.append(out)
    assert outputs[0] == outputs[1]


def test_teacher_forced_choices_agree(llama_backend, hf_backend) -> None:
    sampler = Sampler(SamplingParams())
    total = agree = sure = sure_agree = 0
    for text in PROMPTS:
        prompt = ChatTemplate(llama_backend).prompt([ChatMessage("user", text)], "You are a helpful assistant.")
        llama_backend.load_prompt(prompt)
        hf_backend.load_prompt(prompt)
        for _ in range(40):
            a, b = llama_backend.step(sampler), hf_backend.step(sampler)
            total += 1
            agree += a.token_id == b.token_id
            if a.margin >= 0.1:
                sure += 1
                sure_agree += a.token_id == b.token_id
            if a.token_id in llama_backend.eos_token_ids:
                break
            llama_backend.append([a.token_id])  # both follow llama.cpp's choice
            hf_backend.append([a.token_id])
    assert sure_agree == sure > 50
    assert agree / total >= 0.95
