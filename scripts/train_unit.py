"""`python -m scripts.train_unit`: build the learned unit's training data and train it.

For every training question the real model answers closed-book while a recording unit writes
down the features and the model's hidden states (beside the turns, as .npz). The questions are
realistic, not only easy: invented entities (query_unit/data/train.jsonl) and the SQuAD dev
questions of the two tune articles, whose documents are mixed into the MS MARCO passages, are
labelled 1 (only a document answers them; a detail of a familiar subject included); the
training controls (known facts, words the question defines) 0. The held-out SQuAD article
and the evaluation controls are never seen. The weights go to
query_unit/weights/learned_unit.json. `--from-turns` refits from recorded turns.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import numpy as np

from query_unit import train as trainer
from query_unit.recording import RecordingUnit
from query_unit.turn import UnitTools
from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from scripts.evaluation import build_index, cases, run_case, squad_cases
from service.generator.chat_template import ChatTemplate
from service.generator.loading import load_backend
from service.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--msmarco", type=Path, default=REPO.parent / "shared" / "data" / "msmarco" / "corpus.jsonl")
    parser.add_argument("--turns-out", type=Path, default=REPO / "index_data" / "training_turns.jsonl")
    parser.add_argument("--out", type=Path, default=trainer.WEIGHTS)
    parser.add_argument(
        "--gate-components",
        type=int,
        default=trainer.GATE_COMPONENTS,
        help="hidden-state components for the question; 0: none",
    )
    parser.add_argument(
        "--token-components",
        type=int,
        default=trainer.TOKEN_COMPONENTS,
        help="hidden-state components per token; 0: none",
    )
    parser.add_argument("--from-turns", action="store_true", help="refit from --turns-out without running the model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.from_turns:
        record(args)
    weights = trainer.main(args.turns_out, args.out, args.gate_components, args.token_components)
    print(
        json.dumps(
            {
                "held_out": weights["held_out"],
                "default_rate": weights["default_rate"],
                "trained_on": weights["trained_on"],
            },
            indent=1,
        )
    )


def record(args: argparse.Namespace) -> None:
    """Answer every training question closed-book; write labelled turns."""
    settings = Settings()
    backend = load_backend(settings, hidden_states=True)
    template = ChatTemplate(backend)
    embedder = Embedder(
        settings.retrieval.embedder_path, settings.retrieval.embedder_backend, settings.data_dir / "embedders"
    )
    with tempfile.TemporaryDirectory() as tmp:
        index = build_index(Path(tmp), DocumentIndex(Path(tmp), embedder), args.msmarco, "train", squad=True)
        tools = UnitTools(index, lambda t: len(backend.tokenize(t)), embedder.encode, local=index)
        recorder = RecordingUnit(tools)
        turns, hidden = [], {}
        for n, case in enumerate(cases("train") + squad_cases("tune")):
            closed = run_case(backend, template, recorder, case, settings.model.system_prompt)
            record = recorder.turns[-1]
            needs_document = case.group in ("invented", "squad")
            turns.append(
                {
                    "id": n,
                    "group": case.group,
                    "label": int(needs_document),
                    "closed_correct": closed.correct,
                    "question": record.recorded_question,
                    "tokens": record.token_features,
                }
            )
            states = [h for h in record.token_hidden if h is not None]
            hidden[n] = (
                record.question_hidden,
                np.stack(states) if len(states) == len(record.token_hidden) and states else None,
            )
            logging.info(
                "%3d %-12s label=%d closed=%s  %s", n, case.group, needs_document, closed.correct, case.question
            )
    args.turns_out.parent.mkdir(parents=True, exist_ok=True)
    args.turns_out.write_text("".join(json.dumps(t) + "\n" for t in turns))
    trainer.save_hidden(args.turns_out.with_suffix(".npz"), hidden)


if __name__ == "__main__":
    main()
