"""Which evidence format does the small model use best? Always-retrieve on the training
questions (never the evaluation set), once per style, in one run.
Writes bench/results/evidence_format.json."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import get_args

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine_report
from bench.msmarco import CORPUS as MSMARCO
from query_unit.always import AlwaysRetrieveUnit
from query_unit.turn import UnitTools
from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from scripts.evaluation import build_index, cases, run_case
from service.generator.chat_template import ChatTemplate
from service.generator.evidence_block import EvidenceStyle
from service.generator.loading import load_backend
from service.settings import Settings


def main(limit: int = int(os.environ.get("EVIDENCE_FORMAT_QUESTIONS", "80"))) -> None:
    settings = Settings()
    backend = load_backend(settings)
    template = ChatTemplate(backend)
    embedder = Embedder(
        settings.retrieval.embedder_path, settings.retrieval.embedder_backend, settings.data_dir / "embedders"
    )
    invented = [c for c in cases("train") if c.group == "invented"][:limit]
    report: dict = {
        "benchmark": "evidence_format",
        "machine": machine_report(),
        "questions": len(invented),
        "styles": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        index = build_index(Path(tmp), DocumentIndex(Path(tmp), embedder), MSMARCO, "train")
        unit = AlwaysRetrieveUnit(UnitTools(index, lambda t: len(backend.tokenize(t)), embedder.encode, local=index))
        for style in get_args(EvidenceStyle):
            outcomes = [
                run_case(backend, template, unit, c, settings.model.system_prompt, evidence_style=style)
                for c in invented
            ]
            accuracy = sum(o.correct for o in outcomes) / len(outcomes)
            found = sum(o.evidence_has_answer for o in outcomes) / len(outcomes)
            report["styles"][style] = {"accuracy": accuracy, "evidence_had_answer": found}
            print(f"{style:24s} accuracy {accuracy:.3f} (evidence held the answer in {found:.3f})", flush=True)
    out = Path(__file__).parent / "results" / "evidence_format.json"
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
