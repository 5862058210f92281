"""Answer quality, one run: closed-book, plain always-retrieve, and each of our units, on
invented entities and on real Wikipedia text that nobody here wrote.

Sets, all mixed into the 5,000 MS MARCO passages of ../shared/data/msmarco as distractors:
- invented: query_unit/data/eval.jsonl (invented entities, disjoint from the training set)
  with its controls (query_unit/controls.py: EVAL_CONTROLS, known facts and self-defined words);
- squad_tune: SQuAD v1.1 dev questions on the two articles designs were chosen on (every
  `--tune-stride`th question, to keep the run short);
- squad_held_out: every question on the third article, which nothing was tuned on.

Conditions:
- closed_book: the model alone;
- plain_always_retrieve: what a plain RAG system does: the top-3 chunks and then the question in
  one user message, llama-cpp-python's `create_chat_completion` with the model's own chat
  template and nothing else (the same pinned build and the same index);
- always_retrieve: our decode loop, searching with the question before every answer;
- heuristic, learned: our units, which decide when to search.

Per condition and set: accuracy, share of answers that searched, searches per answer, added
latency per pause, seconds per answer; for questions that need a document, whether the gold
answer was in what retrieval returned, in what the reader kept, and in the answer; and the
faults of wrong answers (echoes of the question, restated evidence, another language).
Writes bench/results/answer_quality.json (`--units`, `--sets` and `--out` run a subset).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine_report
from bench.msmarco import CORPUS as MSMARCO
from query_unit.always import AlwaysRetrieveUnit
from query_unit.heuristic import HeuristicUnit
from query_unit.learned import WEIGHTS, LearnedUnit, LearnedWeights
from query_unit.turn import UnitTools
from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from retrieval.types import Passage
from scripts.evaluation import Case, Outcome, build_index, cases, is_correct, run_case, squad_cases
from service.generator.chat_template import ChatTemplate
from service.generator.loading import load_backend
from service.generator.model_files import default_gguf_path
from service.settings import Settings

UNITS = ("closed_book", "plain_always_retrieve", "always_retrieve", "heuristic", "learned")
SETS = ("invented", "squad_tune", "squad_held_out")
FAULTS = ("echo", "evidence_copy", "other_language")


class RecordingSearcher:
    """The index, remembering what each search of the current answer returned."""

    def __init__(self, index: DocumentIndex) -> None:
        self.index = index
        self.found: list[Passage] = []

    def search(self, query: str, k: int = 4) -> list[Passage]:
        found = self.index.search(query, k)
        self.found.extend(found)
        return found


def plain_always_retrieve(llm, index: DocumentIndex, case: Case, max_tokens: int = 80) -> tuple[Outcome, list[Passage]]:
    """Top-3 chunks, then the question, in one user message; the model's own template."""
    start = time.perf_counter()
    found = index.search(case.question, 3)
    content = "\n\n".join([p.text for p in found] + [case.question])
    llm.reset()
    reply = llm.create_chat_completion(
        messages=[{"role": "user", "content": content}], temperature=0.0, max_tokens=max_tokens
    )
    text = reply["choices"][0]["message"]["content"] or ""
    took = time.perf_counter() - start
    has = any(is_correct(p.text, case.answer) for p in found)
    return Outcome(case, text, is_correct(text, case.answer), 1, [], has, took, [p.text for p in found]), found


def summarize(outcomes: list[Outcome], retrieved: list[bool]) -> dict:
    def share(rows: list, key) -> float:
        return sum(1 for r in rows if key(r)) / len(rows) if rows else 0.0

    needs = [n for n, o in enumerate(outcomes) if o.case.group in ("invented", "squad")]
    controls = [o for o in outcomes if o.case.group in ("known", "self_defined")]
    pauses = [p for o in outcomes for p in o.pause_seconds]
    wrong = [o for o in outcomes if not o.correct]
    row = {
        "questions": len(needs),
        "accuracy": share([outcomes[n] for n in needs], lambda o: o.correct),
        "searched": share([outcomes[n] for n in needs], lambda o: o.searches > 0),
        # Where answers are lost: retrieval, the reader, or the model.
        "gold_in_retrieved": share(needs, lambda n: retrieved[n]),
        "gold_in_kept": share([outcomes[n] for n in needs], lambda o: o.evidence_has_answer),
        "searches_per_answer": statistics.mean(o.searches for o in outcomes),
        "added_latency_per_pause_s": statistics.mean(pauses) if pauses else 0.0,
        "seconds_per_answer": statistics.mean(o.seconds for o in outcomes),
        "wrong_answers_with": {f: sum(f in o.faults() for o in wrong) for f in FAULTS},
    }
    if controls:
        row["controls"] = len(controls)
        row["control_accuracy"] = share(controls, lambda o: o.correct)
        row["control_searched"] = share(controls, lambda o: o.searches > 0)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", nargs="+", choices=UNITS, default=list(UNITS))
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--tune-stride", type=int, default=3, help="every n-th question of the SQuAD tune articles")
    parser.add_argument("--weights", type=Path, default=WEIGHTS, help="the learned unit's weights")
    parser.add_argument(
        "--learned-rate", type=float, default=None, help="the learned unit's target rate; default: as trained"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "answer_quality.json")
    parser.add_argument(
        "--merge", nargs="+", type=Path, help="combine these reports (of other units) into --out, and stop"
    )
    args = parser.parse_args()
    settings = Settings()
    if args.merge:
        merge(args.merge, settings.unit.query_unit, args.out)
        return
    # As the service runs them: the learned unit on an engine that reports hidden states (its
    # prefill ends in a one-token batch, which can move near-ties), the others on a plain one.
    backend = load_backend(settings)
    hidden_backend = load_backend(settings, hidden_states=True) if "learned" in args.units else backend
    template = ChatTemplate(backend)
    embedder = Embedder(
        settings.retrieval.embedder_path, settings.retrieval.embedder_backend, settings.data_dir / "embedders"
    )
    sets = {
        "invented": cases("eval"),
        "squad_tune": squad_cases("tune")[:: args.tune_stride],
        "squad_held_out": squad_cases("held_out"),
    }
    sets = {name: sets[name] for name in args.sets}
    report: dict = {
        "benchmark": "answer_quality",
        "machine": machine_report(),
        "questions": {name: len(rows) for name, rows in sets.items()},
        "conditions": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        index = build_index(Path(tmp), DocumentIndex(Path(tmp), embedder), MSMARCO, "eval", squad=True)
        report["index"] = {**index.stats(), "seconds": time.perf_counter() - start}
        recorder = RecordingSearcher(index)
        tools = UnitTools(recorder, lambda t: len(backend.tokenize(t)), embedder.encode, local=index)
        units = {
            "closed_book": None,
            "always_retrieve": AlwaysRetrieveUnit(tools),
            "heuristic": HeuristicUnit(tools),
            "learned": LearnedUnit(tools, LearnedWeights.load(args.weights), args.learned_rate)
            if "learned" in args.units
            else None,
        }
        llm = None
        if "plain_always_retrieve" in args.units:
            from llama_cpp import Llama

            threads = settings.model.n_threads or len(os.sched_getaffinity(0))  # as many as our engine uses
            llm = Llama(
                model_path=str(settings.model.model_path or default_gguf_path()),
                n_ctx=settings.model.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=512,
                verbose=False,
            )
        for name in args.units:
            report["conditions"][name] = {}
            for set_name, rows in sets.items():
                outcomes, retrieved = [], []
                for case in rows:
                    if name == "plain_always_retrieve":
                        outcome, found = plain_always_retrieve(llm, index, case)
                    else:
                        recorder.found = []
                        engine = hidden_backend if name == "learned" else backend
                        outcome = run_case(engine, template, units[name], case, settings.model.system_prompt)
                        found = recorder.found
                    outcomes.append(outcome)
                    retrieved.append(any(is_correct(p.text, case.answer) for p in found))
                row = summarize(outcomes, retrieved)
                row["misses"] = [
                    {
                        "question": o.case.question,
                        "gold": o.case.answer,
                        "answer": o.text[:200],
                        "searches": o.searches,
                        "faults": sorted(o.faults()),
                    }
                    for o in outcomes
                    if not o.correct
                ][:12]
                report["conditions"][name][set_name] = row
                controls = (
                    f" | controls {row['control_accuracy']:.3f} searched {row['control_searched']:.3f}"
                    if "controls" in row
                    else ""
                )
                print(
                    f"{name:22s} {set_name:15s} acc {row['accuracy']:.3f} searched {row['searched']:.3f} "
                    f"(gold retrieved {row['gold_in_retrieved']:.3f} kept {row['gold_in_kept']:.3f}){controls} | "
                    f"{row['searches_per_answer']:.2f} searches/answer, "
                    f"+{row['added_latency_per_pause_s'] * 1000:.0f} ms/pause, "
                    f"{row['seconds_per_answer']:.2f} s/answer | faults {row['wrong_answers_with']}",
                    flush=True,
                )
                args.out.write_text(json.dumps(report, indent=2) + "\n")  # partial results survive an interrupted run
    finish(report, settings.unit.query_unit, args.out)


def finish(report: dict, default: str, out: Path) -> None:
    """The targets of the default unit against plain always-retrieve and closed-book, once
    all three are in the report; then write it."""
    c = report["conditions"]
    if default in c and "plain_always_retrieve" in c and "closed_book" in c:
        report["default_unit"] = default
        ours, plain, closed = c[default], c["plain_always_retrieve"], c["closed_book"]
        report["targets"] = {
            **{
                f"{s}: beats plain always-retrieve by 0.05": ours[s]["accuracy"] >= plain[s]["accuracy"] + 0.05
                for s in ours
                if s != "squad_tune"
            },
            **{
                f"{s}: searched at least 90% of questions that need a document": ours[s]["searched"] >= 0.9
                for s in ours
            },
        }
        if "invented" in ours:
            report["targets"]["controls keep closed-book accuracy (-0.02 at most)"] = (
                ours["invented"]["control_accuracy"] >= closed["invented"]["control_accuracy"] - 0.02
            )
            report["targets"]["controls searched at most 10%"] = ours["invented"]["control_searched"] <= 0.10
        print(json.dumps(report["targets"], indent=1))
    out.write_text(json.dumps(report, indent=2) + "\n")


def merge(parts: list[Path], default: str, out: Path) -> None:
    """One report from runs of different units or sets (e.g. in parallel, one core each)."""
    reports = [json.loads(p.read_text()) for p in parts]
    merged = {**reports[0], "conditions": {}, "questions": {}, "merged_from": [str(p) for p in parts]}
    for r in reports:
        merged["questions"].update(r["questions"])
        for name, sets in r["conditions"].items():
            merged["conditions"].setdefault(name, {}).update(sets)
    finish(merged, default, out)


if __name__ == "__main__":
    main()
