"""The cost of one pause mid-answer: this service's rollback-and-append against rebuilding the
prompt with the evidence and prefilling it again, as FLARE-style systems do.

A conversation of about 200, 1,000 or 3,000 tokens (earlier turns about SQuAD articles), a new
question, and a draft of 24 answer tokens, of which the last sentence (8 tokens) is withdrawn
at the pause. The evidence is the same 3 SQuAD paragraphs in every approach. Three ways to go on:

- ours: roll the KV cache back to the sentence start, append the evidence block (close the
  draft, the evidence as a user message, a new assistant header), read the next token's logits;
- rebuild, prefix reused: the evidence put before the question, the kept draft after it, the
  cache reused up to the first changed token (what a careful rebuild with prefix caching gets);
- rebuild, cold (FLARE): the whole prompt with evidence and kept draft evaluated from scratch.

Each measures the tokens the model evaluated and the milliseconds until the next token's logits,
median of 3 runs, in one process and one run. Writes bench/results/pause_cost.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine_report
from query_unit.types import Evidence
from retrieval.types import Passage
from scripts.evaluation import SQUAD, read_jsonl
from service.generator.chat_template import ChatMessage, ChatTemplate
from service.generator.evidence_block import evidence_block, evidence_text
from service.generator.llama_backend import LlamaCppBackend
from service.generator.model_files import default_gguf_path
from service.settings import Settings

SIZES = (200, 1000, 3000)
DRAFT, WITHDRAWN, REPS = 24, 8, 3
QUESTION = "What did the Normans do in the 10th and 11th centuries?"


def conversation(template: ChatTemplate, paragraphs: list[str], size: int) -> list[ChatMessage]:
    """Earlier turns (a user question and an assistant paragraph each) up to about `size` tokens."""
    messages: list[ChatMessage] = []
    used = 0
    for n, text in enumerate(paragraphs):
        if used >= size - 60:
            break
        messages += [ChatMessage("user", f"Tell me more ({n + 1})."), ChatMessage("assistant", text)]
        used += len(template.backend.tokenize(text)) + 16
    return messages + [ChatMessage("user", QUESTION)]


def timed(backend: LlamaCppBackend, action) -> tuple[int, float]:
    """(tokens evaluated, milliseconds) until the next token's logits are ready."""
    before = backend.n_evaluated
    start = time.perf_counter()
    action()
    backend.logits()
    return backend.n_evaluated - before, 1000 * (time.perf_counter() - start)


def main() -> None:
    settings = Settings()
    backend = LlamaCppBackend(default_gguf_path(), n_ctx=4096, n_threads=settings.model.n_threads)
    template = ChatTemplate(backend)
    paragraphs = [d["text"] for d in read_jsonl(SQUAD / "docs.jsonl")]
    evidence = Evidence(
        query=QUESTION,
        passages=tuple(Passage(text=t, source=f"squad:{n}") for n, t in enumerate(paragraphs[:3])),
        question=QUESTION,
    )
    report: dict = {
        "benchmark": "pause_cost",
        "machine": machine_report(),
        "draft_tokens": DRAFT,
        "withdrawn_tokens": WITHDRAWN,
        "sizes": {},
    }
    for size in SIZES:
        messages = conversation(template, paragraphs[3:], size)
        prompt = template.prompt(messages, settings.model.system_prompt)
        draft = backend.tokenize(
            " The Normans gave their name to Normandy, a region in France. They were descended from Norse raiders"
        )[:DRAFT]
        kept = draft[: DRAFT - WITHDRAWN]
        block = evidence_block(template, evidence, draft_kept=True)
        # The rebuilt prompt: the evidence before the question in its message, the kept draft after.
        rebuilt_messages = [*messages[:-1], ChatMessage("user", evidence_text(evidence, "passages_then_question"))]
        rebuilt = template.prompt(rebuilt_messages, settings.model.system_prompt) + kept
        rows: dict[str, list[tuple[int, float]]] = {"ours": [], "rebuild_prefix_reused": [], "rebuild_cold": []}
        for _ in range(REPS):
            for name in rows:
                backend.rollback(0)
                backend.load_prompt(prompt + draft)  # the answer so far, as the decode loop holds it
                if name == "ours":
                    rows[name].append(
                        timed(
                            backend,
                            lambda prompt=prompt, kept=kept, block=block: (
                                backend.rollback(len(prompt) + len(kept)),
                                backend.append(block),
                            ),
                        )
                    )
                elif name == "rebuild_prefix_reused":
                    rows[name].append(timed(backend, lambda rebuilt=rebuilt: backend.load_prompt(rebuilt)))
                else:
                    rows[name].append(
                        timed(backend, lambda rebuilt=rebuilt: (backend.rollback(0), backend.load_prompt(rebuilt)))
                    )
        entry = {"context_tokens": len(prompt) + len(draft), "evidence_tokens": len(block)}
        for name, runs in rows.items():
            entry[name] = {"tokens_evaluated": runs[0][0], "ms": statistics.median(ms for _, ms in runs)}
        entry["ms_ratio_cold_over_ours"] = entry["rebuild_cold"]["ms"] / entry["ours"]["ms"]
        entry["ms_ratio_prefix_reused_over_ours"] = entry["rebuild_prefix_reused"]["ms"] / entry["ours"]["ms"]
        report["sizes"][str(size)] = entry
        print(
            f"{entry['context_tokens']:5d} tokens: "
            f"ours {entry['ours']['tokens_evaluated']} tokens {entry['ours']['ms']:.0f} ms | "
            f"rebuild, prefix reused {entry['rebuild_prefix_reused']['tokens_evaluated']} tokens "
            f"{entry['rebuild_prefix_reused']['ms']:.0f} ms | "
            f"rebuild, cold {entry['rebuild_cold']['tokens_evaluated']} tokens {entry['rebuild_cold']['ms']:.0f} ms | "
            f"cold/ours {entry['ms_ratio_cold_over_ours']:.1f}x",
            flush=True,
        )
    out = Path(__file__).parent / "results" / "pause_cost.json"
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
