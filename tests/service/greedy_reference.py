"""Greedy tokens and logits of fixed prompts, recorded once per llama.cpp baseline.

The pinned build (deploy/build_llama_cpp.sh) must compute the same logits on every machine
that runs it. `test_greedy_reference.py` decodes these prompts afresh and compares, bit for
bit, with the file written here by that build:

    .venv/bin/python -m tests.service.greedy_reference   # writes reference/greedy-<baseline>.json
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from service.generator import llama_build
from service.generator.backend import Backend
from service.generator.chat_template import ChatMessage, ChatTemplate
from service.generator.sampling import Sampler, SamplingParams

FOLDER = Path(__file__).resolve().parent / "reference"
STEPS = 40

# Chat turns with and without a system prompt, one whose answer sits on a near tie (the
# French answer of issue 11), an evidence block, and a long prompt (batched prefill).
PROMPTS: list[dict] = [
    {"system": "You are a helpful assistant.", "user": "What is the capital of France?"},
    {"system": None, "user": "What is the capital of France?"},
    {"system": "You are a helpful assistant.", "user": "Explain photosynthesis in two sentences."},
    {"system": "You are a helpful assistant.", "user": "Where was Zorblax Quintaro born?"},
    {
        "system": "You are a helpful assistant.",
        "user": "Search results:\n[1] Zorblax Quintaro was born in 1987 in the harbour town of Vellmora.\n\n"
        "Where was Zorblax Quintaro born?",
    },
    {"system": None, "user": "Write a long, detailed story about a lighthouse keeper. " * 12},
]


def path_for(baseline: str) -> Path:
    return FOLDER / f"greedy-{baseline}.json"


def decode(backend: Backend, prompt: dict) -> dict:
    """Greedy tokens from a cold cache, the digest of every step's float32 logits, and the
    first step's top five (to see how far a mismatch is)."""
    template = ChatTemplate(backend)
    ids = template.prompt([ChatMessage("user", prompt["user"])], prompt["system"])
    backend.rollback(0)
    backend.load_prompt(ids)
    sampler, digest, tokens = Sampler(SamplingParams()), hashlib.sha256(), []
    first = np.array(backend.logits(), dtype=np.float32)
    for _ in range(STEPS):
        digest.update(np.ascontiguousarray(backend.logits(), dtype=np.float32).tobytes())
        step = backend.step(sampler)
        if step.token_id in backend.eos_token_ids:
            break
        backend.append([step.token_id])
        tokens.append(step.token_id)
    log_probs = first - first.max() - np.log(np.exp(first - first.max()).sum())
    top = np.argsort(-log_probs)[:5]
    return {
        "tokens": tokens,
        "text": b"".join(backend.token_bytes(t) for t in tokens).decode("utf-8", "replace"),
        "logits_sha256": digest.hexdigest(),
        "first_top5": [[backend.piece(int(t)), round(float(log_probs[t]), 4)] for t in top],
    }


def record(backend: Backend) -> dict:
    import llama_cpp

    return {
        "baseline": llama_build.baseline(),
        "llama_cpp_python": llama_cpp.__version__,
        "model": Path(getattr(backend, "model_path", "")).name,
        "steps": STEPS,
        "prompts": [{**prompt, **decode(backend, prompt)} for prompt in PROMPTS],
    }


def main() -> None:
    from service.generator.llama_backend import LlamaCppBackend
    from service.generator.model_files import default_gguf_path

    name = llama_build.baseline()
    if name is None:
        raise SystemExit(llama_build.describe() + ": references are recorded by pinned builds only")
    result = record(LlamaCppBackend(default_gguf_path(), n_ctx=4096))
    FOLDER.mkdir(exist_ok=True)
    path_for(name).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path_for(name)}")


if __name__ == "__main__":
    main()
