"""Answer quality of the query units on the evaluation set, one run, four conditions:
closed-book, always-retrieve-before-answering, the heuristic unit and the learned unit.

The evaluation set (query_unit/data/eval.jsonl: invented entities, disjoint from the
training set; query_unit/controls.py: EVAL_CONTROLS) is mixed into the 5,000 MS MARCO
passages of ../shared/data/msmarco. Reports per condition: accuracy on invented-entity
questions and on controls, the share of turns that searched (each group), searches per turn,
and the added latency per pause. Writes bench/results/answer_quality.json (`--units` and
`--out` run a subset elsewhere, e.g. to compare weights from `--weights`).
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
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.machine import machine_report  # noqa: E402
from query_unit.always import AlwaysRetrieveUnit  # noqa: E402
from query_unit.heuristic import HeuristicUnit  # noqa: E402
from query_unit.learned import WEIGHTS, LearnedUnit, LearnedWeights  # noqa: E402
from query_unit.turn import UnitTools  # noqa: E402
from retrieval.document_index import DocumentIndex  # noqa: E402
from retrieval.embedder import Embedder  # noqa: E402
from service.evaluation import Outcome, build_index, cases, run_case  # noqa: E402
from service.generator.chat_template import ChatTemplate  # noqa: E402
from service.generator.loading import load_backend  # noqa: E402
from service.settings import Settings  # noqa: E402

MSMARCO = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "msmarco" / "corpus.jsonl"


def summarize(outcomes: list[Outcome]) -> dict:
    def share(rows: list[Outcome], key) -> float:
        return sum(1 for r in rows if key(r)) / len(rows) if rows else 0.0

    invented = [o for o in outcomes if o.case.group == "invented"]
    controls = [o for o in outcomes if o.case.group != "invented"]
    defined = [o for o in outcomes if o.case.group == "self_defined"]
    pauses = [p for o in outcomes for p in o.pause_seconds]
    return {
        "invented_accuracy": share(invented, lambda o: o.correct),
        "control_accuracy": share(controls, lambda o: o.correct),
        "self_defined_accuracy": share(defined, lambda o: o.correct),
        "invented_searched": share(invented, lambda o: o.searches > 0),
        "control_searched": share(controls, lambda o: o.searches > 0),
        "self_defined_searched": share(defined, lambda o: o.searches > 0),
        "searches_per_turn": statistics.mean(o.searches for o in outcomes),
        "added_latency_per_pause_s": statistics.mean(pauses) if pauses else 0.0,
        "seconds_per_turn": statistics.mean(o.seconds for o in outcomes),
    }


UNITS = ("closed_book", "always_retrieve", "heuristic", "learned")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", nargs="+", choices=UNITS, default=list(UNITS))
    parser.add_argument("--weights", type=Path, default=WEIGHTS, help="the learned unit's weights")
    parser.add_argument("--learned-rate", type=float, default=None, help="the learned unit's target rate; default: as trained")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "answer_quality.json")
    args = parser.parse_args()
    settings = Settings()
    # As the service runs them: the learned unit on an engine that reports hidden states (its
    # prefill ends in a one-token batch, which can move near-ties), the others on a plain one.
    backend = load_backend(settings)
    hidden_backend = load_backend(settings, hidden_states=True)
    template = ChatTemplate(backend)
    embedder = Embedder(settings.embedder_path, settings.embedder_engine, settings.data_dir / "embedders")
    evaluation = cases("eval")
    report: dict = {
        "benchmark": "answer_quality",
        "machine": machine_report(),
        "questions": {g: sum(c.group == g for c in evaluation) for g in ("invented", "known", "self_defined")},
        "conditions": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        index = build_index(Path(tmp), DocumentIndex(Path(tmp), embedder), MSMARCO, "eval")
        report["index"] = {**index.stats(), "seconds": time.perf_counter() - start}
        tools = UnitTools(index, lambda t: len(backend.tokenize(t)), embedder.encode, local=index)
        units = {
            "closed_book": None,
            "always_retrieve": AlwaysRetrieveUnit(tools),
            "heuristic": HeuristicUnit(tools),
            "learned": LearnedUnit(tools, LearnedWeights.load(args.weights), args.learned_rate),
        }
        for name in args.units:
            unit = units[name]
            engine = hidden_backend if name == "learned" else backend
            outcomes = [run_case(engine, template, unit, case, settings.system_prompt) for case in evaluation]
            report["conditions"][name] = summarize(outcomes)
            report["conditions"][name]["misses"] = [
                {"question": o.case.question, "gold": o.case.answer, "answer": o.text[:160], "searches": o.searches}
                for o in outcomes
                if not o.correct
            ][:15]
            row = report["conditions"][name]
            print(
                f"{name:16s} invented acc {row['invented_accuracy']:.3f} searched {row['invented_searched']:.3f} | "
                f"controls acc {row['control_accuracy']:.3f} searched {row['control_searched']:.3f} | "
                f"searches/turn {row['searches_per_turn']:.2f} | +{row['added_latency_per_pause_s'] * 1000:.0f} ms/pause",
                flush=True,
            )
    c = report["conditions"]
    default = settings.query_unit
    if set(UNITS) - set(c):
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        return
    report["default_unit"] = default
    report["targets"] = {
        "default_beats_always_on_invented": c[default]["invented_accuracy"] > c["always_retrieve"]["invented_accuracy"],
        "controls_at_least_closed_book": c[default]["control_accuracy"] >= c["closed_book"]["control_accuracy"],
        "searches_on_at_most_10pct_of_controls": c[default]["control_searched"] <= 0.10,
        "searches_on_at_least_95pct_of_invented": c[default]["invented_searched"] >= 0.95,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["targets"], indent=1))


if __name__ == "__main__":
    main()
