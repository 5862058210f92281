"""Follow-up questions in a conversation: does the second question, which names its subject only
through "it" ("In what year was it invented?"), still get the documents' answer? One run, two
conditions on the same first turns:

- baseline: the query unit reads the follow-up alone (as before follow-ups were read);
- ours: it also reads the earlier question and whether that answer cited sources
  (`service.runtime.runtime.follow_up`).

Conversations: for each invented entity of the evaluation set (query_unit/data/eval.jsonl,
mixed into the 5,000 MS MARCO passages), its first question, then each other question with the
entity's name replaced by "it". Controls: pairs of consecutive control questions the model
knows, to check that follow-ups on familiar topics do not search more. Reports accuracy and
the share of follow-ups that searched. Writes bench/results/follow_ups.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine_report
from bench.msmarco import CORPUS as MSMARCO
from query_unit.controls import EVAL_CONTROLS, SELF_DEFINED, TRAIN_CONTROLS
from query_unit.heuristic import HeuristicUnit
from query_unit.turn import UnitTools
from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from scripts.evaluation import build_index, invented_documents, is_correct
from service.answer.citations import strip_citations
from service.answer.completions import CompletionBuilder, collect
from service.generator.chat_template import ChatMessage, ChatTemplate
from service.generator.decode_loop import GenerationParams, generate
from service.generator.loading import load_backend
from service.runtime.conversation import follow_up
from service.settings import Settings

GROUPS = ("invented", "known", "switch")


def refer_back(question: str, title: str) -> str | None:
    """The question with the entity's name replaced by "it"; None if the name is not in it."""
    name = re.sub(r"^the\s+", "", title, flags=re.IGNORECASE)
    pattern = re.compile(r"(\bthe\s+)?" + re.escape(name), re.IGNORECASE)
    if not pattern.search(question):
        return None
    rewritten = pattern.sub("it", question).replace("it's", "its")
    return rewritten[0].upper() + rewritten[1:]


def conversations(split: str = "eval") -> list[tuple[str, str, str, str]]:
    """(first question, follow-up, its gold answer, group)."""
    out = []
    for document in invented_documents(split):
        first, *rest = document["questions"]
        for later in rest:
            rewritten = refer_back(later["question"], document["title"])
            if rewritten is not None:
                out.append((first["question"], rewritten, later["answer"], "invented"))
    defined = {q for q, _ in SELF_DEFINED}
    known = [(q, a) for q, a in (EVAL_CONTROLS if split == "eval" else TRAIN_CONTROLS) if q not in defined]
    out += [(known[i][0], known[i + 1][0], known[i + 1][1], "known") for i in range(0, len(known) - 1, 2)]
    # A change of subject: a question about an invented entity (answered from sources), then
    # a known fact that has nothing to do with it.
    firsts = [d["questions"][0]["question"] for d in invented_documents(split)]
    out += [(first, q, a, "switch") for first, (q, a) in zip(firsts, known)]
    return out


def answer(backend, template, unit, messages: list[ChatMessage], system: str, with_context: bool) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    """The cited answer as the API gives it, and how many searches it made."""
    question = messages[-1].content
    context = follow_up(messages) if with_context else None
    model_view = [ChatMessage(m.role, strip_citations(m.content)) if m.role == "assistant" else m for m in messages]
    prompt = template.prompt(model_view, system)
    span = template.question_span(prompt, model_view)
    events = generate(
        backend,
        template,
        prompt,
        unit.begin_turn(question, context),
        GenerationParams(max_tokens=80),
        question_span=span,
    )

    async def events_async():  # type: ignore[no-untyped-def]
        for event in events:
            yield event

    builder = CompletionBuilder(backend, "bench", False, 0, question)
    body = asyncio.run(collect(builder, events_async()))
    return body.choices[0].message.content, len(body.pauses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["eval", "train"], default="eval", help="train: for design choices")
    args = parser.parse_args()
    settings = Settings()
    backend = load_backend(settings)
    template = ChatTemplate(backend)
    embedder = Embedder(
        settings.retrieval.embedder_path, settings.retrieval.embedder_backend, settings.data_dir / "embedders"
    )
    pairs = conversations(args.split)
    report: dict = {
        "benchmark": "follow_ups",
        "machine": machine_report(),
        "split": args.split,
        "conversations": {g: sum(p[3] == g for p in pairs) for g in GROUPS},
    }
    rows: dict[str, list[dict]] = {"baseline": [], "ours": []}
    with tempfile.TemporaryDirectory() as tmp:
        index = build_index(Path(tmp), DocumentIndex(Path(tmp), embedder), MSMARCO, args.split)
        unit = HeuristicUnit(UnitTools(index, lambda t: len(backend.tokenize(t)), embedder.encode, local=index))
        start = time.perf_counter()
        for first, later, gold, group in pairs:
            first_answer, _ = answer(
                backend, template, unit, [ChatMessage("user", first)], settings.model.system_prompt, True
            )
            history = [ChatMessage("user", first), ChatMessage("assistant", first_answer), ChatMessage("user", later)]
            for name in rows:
                text, searches = answer(backend, template, unit, history, settings.model.system_prompt, name == "ours")
                rows[name].append(
                    {
                        "group": group,
                        "follow_up": later,
                        "gold": gold,
                        "answer": text[:200],
                        "correct": is_correct(text, gold),
                        "searched": searches > 0,
                        "first_sourced": "\n\nSources:\n" in first_answer,
                    }
                )
        report["seconds"] = time.perf_counter() - start
    report["results"] = {}
    for name, outcomes in rows.items():
        result = {}
        for group in GROUPS:
            mine = [o for o in outcomes if o["group"] == group]
            result[f"{group}_accuracy"] = sum(o["correct"] for o in mine) / len(mine)
            result[f"{group}_searched"] = sum(o["searched"] for o in mine) / len(mine)
        report["results"][name] = result
        result["misses"] = [
            {k: o[k] for k in ("follow_up", "gold", "answer", "searched")} for o in outcomes if not o["correct"]
        ][:12]
        print(
            f"{name:9s} invented follow-ups: accuracy {result['invented_accuracy']:.3f}, "
            f"searched {result['invented_searched']:.3f} | "
            f"known: accuracy {result['known_accuracy']:.3f}, searched {result['known_searched']:.3f} | "
            f"change of subject: accuracy {result['switch_accuracy']:.3f}, searched {result['switch_searched']:.3f}",
            flush=True,
        )
    invented_first = [o for o in rows["ours"] if o["group"] == "invented"]
    report["invented_first_answers_sourced"] = sum(o["first_sourced"] for o in invented_first) / len(invented_first)
    base, ours = report["results"]["baseline"], report["results"]["ours"]
    report["invented_accuracy_gain"] = ours["invented_accuracy"] - base["invented_accuracy"]
    out = Path(__file__).parent / "results" / ("follow_ups.json" if args.split == "eval" else "follow_ups_train.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"invented follow-ups answered: {base['invented_accuracy']:.3f} -> {ours['invented_accuracy']:.3f}")


if __name__ == "__main__":
    main()
