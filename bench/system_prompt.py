"""Which default system prompt: candidates compared on the pinned llama.cpp build, in one run.

A 135M model's answers hang on near ties, and the system prompt moves them: with "You are a
helpful assistant." the pinned build answers "What is the capital of France?" in French. Each
candidate is measured three ways, on two splits:

- closed-book control questions (facts the model knows, words the question defines);
- invented-entity questions, searching with the question before answering (accuracy with
  evidence: does the model read what it is given?);
- SQuAD v1.1 dev questions (real Wikipedia paragraphs, crowd-written questions), the same way.

The invented documents and SQuAD paragraphs are mixed into the 5,000 MS MARCO passages. The
choice is made on the `tune` split (training controls and invented entities, two SQuAD
articles) by the mean of the three accuracies; the `held_out` split (evaluation controls and
entities, the third article) is reported beside it. Writes bench/results/system_prompt.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine_report
from bench.msmarco import CORPUS as MSMARCO
from query_unit.always import AlwaysRetrieveUnit
from query_unit.turn import UnitTools
from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from scripts.evaluation import build_index, cases, run_case, squad_cases
from service.generator.chat_template import ChatTemplate
from service.generator.loading import load_backend
from service.settings import Settings

CANDIDATES: dict[str, str] = {
    "none": "",  # no system message at all
    "model_own": "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    "previous_default": "You are a helpful assistant. Answer briefly and factually.",
    "plain": "You are a helpful assistant.",
    "english": "You are a helpful assistant. Answer in English, briefly and factually.",
    "english_short": "Answer the user's question briefly and accurately, in English.",
}

# split -> (invented/controls split, SQuAD split)
SPLITS = {"tune": ("train", "tune"), "held_out": ("eval", "held_out")}


def accuracy(outcomes: list) -> float:
    return statistics.mean(o.correct for o in outcomes) if outcomes else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", nargs="+", choices=sorted(CANDIDATES), default=list(CANDIDATES))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "system_prompt.json")
    args = parser.parse_args()
    settings = Settings()
    backend = load_backend(settings)
    template = ChatTemplate(backend)
    embedder = Embedder(
        settings.retrieval.embedder_path, settings.retrieval.embedder_backend, settings.data_dir / "embedders"
    )
    report: dict = {"benchmark": "system_prompt", "machine": machine_report(), "candidates": {}}
    with tempfile.TemporaryDirectory() as tmp:
        index = build_index(Path(tmp), DocumentIndex(Path(tmp), embedder), MSMARCO, ("train", "eval"), squad=True)
        tools = UnitTools(index, lambda t: len(backend.tokenize(t)), embedder.encode, local=index)
        always = AlwaysRetrieveUnit(tools)
        for name in args.candidates:
            prompt = CANDIDATES[name]
            row: dict = {"system_prompt": prompt}
            for split, (entity_split, squad_split) in SPLITS.items():
                start = time.perf_counter()
                questions = cases(entity_split)
                controls = [c for c in questions if c.group != "invented"]
                invented = [c for c in questions if c.group == "invented"]
                closed = [run_case(backend, template, None, c, prompt) for c in controls]
                with_evidence = [run_case(backend, template, always, c, prompt) for c in invented]
                squad = [run_case(backend, template, always, c, prompt) for c in squad_cases(squad_split)]
                row[split] = {
                    "controls_closed_book": accuracy(closed),
                    "invented_with_evidence": accuracy(with_evidence),
                    "squad_with_evidence": accuracy(squad),
                    "mean": statistics.mean([accuracy(closed), accuracy(with_evidence), accuracy(squad)]),
                    "questions": len(closed) + len(with_evidence) + len(squad),
                    "seconds": time.perf_counter() - start,
                    "control_misses": [(o.case.question, o.text[:80]) for o in closed if not o.correct],
                }
                r = row[split]
                print(
                    f"{name:17s} {split:9s} controls {r['controls_closed_book']:.3f} "
                    f"| invented {r['invented_with_evidence']:.3f}"
                    f" | squad {r['squad_with_evidence']:.3f} | mean {r['mean']:.3f}",
                    flush=True,
                )
            report["candidates"][name] = row
    chosen = max(report["candidates"], key=lambda n: report["candidates"][n]["tune"]["mean"])
    report["chosen_on_tune"] = chosen
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"chosen on the tune split: {chosen} ({CANDIDATES[chosen]!r})")


if __name__ == "__main__":
    main()
