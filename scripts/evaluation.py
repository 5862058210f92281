"""Running questions through the real decode loop and scoring the answers: shared by the
answer-quality benchmark and the learned unit's training command."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from query_unit.content_words import FUNCTION_WORDS
from query_unit.controls import EVAL_CONTROLS, SELF_DEFINED, TRAIN_CONTROLS
from query_unit.protocol import QueryUnit
from retrieval.chunking import sentence_spans
from retrieval.document_index import DocumentIndex, DocumentInput
from service.generator.backend import Backend
from service.generator.chat_template import ChatMessage, ChatTemplate
from service.generator.decode_loop import GenerationParams, generate
from service.generator.events import DoneEvent, EvidenceEvent, PauseEvent, ResumeEvent, TokenEvent
from service.generator.evidence_block import DEFAULT_STYLE, EvidenceStyle

DATA = Path(__file__).resolve().parent.parent / "query_unit" / "data"
# Real Wikipedia paragraphs with crowd-written questions, beside the checkout (../shared/data).
SQUAD = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "squad-dev"
# Designs are chosen on two articles; the third is reported as text nothing here was tuned on.
SQUAD_SPLITS: dict[str, tuple[str, ...]] = {
    "tune": ("Normans", "Computational_complexity_theory"),
    "held_out": ("Southern_California",),
}


def read_jsonl(path: Path) -> list[dict]:
    # split("\n"), not splitlines(): some MS MARCO passages contain U+2028.
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").split("\n") if line.strip()]


@dataclass(frozen=True)
class Case:
    question: str
    answer: str  # alternatives separated by "|"
    group: str  # invented | known | self_defined | squad


@dataclass
class Outcome:
    case: Case
    text: str
    correct: bool
    searches: int
    pause_seconds: list[float] = field(default_factory=list)
    evidence_has_answer: bool = False
    seconds: float = 0.0
    evidence: list[str] = field(default_factory=list)  # what the reader kept, passage by passage

    def faults(self) -> set[str]:
        """What went wrong in a wrong answer (see answer_faults)."""
        return set() if self.correct else answer_faults(self.text, self.case.question, self.evidence)


def is_correct(text: str, gold: str) -> bool:
    lowered = text.lower()
    return any(option.lower() in lowered for option in gold.split("|"))


def _words(text: str) -> list[str]:
    # Any script's letters, unlike query_unit's ASCII words: a Russian answer must count as words.
    return re.findall(r"[^\W_]+", text.lower())


def _first_sentence(text: str) -> str:
    spans = sentence_spans(text)
    return text[spans[0][0] : spans[0][1]] if spans else text


def answer_faults(text: str, question: str, evidence: list[str]) -> set[str]:
    """The three ways a small model fails with evidence in front of it, as measured faults:
    - "echo": the answer's first sentence restates the question (4/5 of its words are the question's);
    - "evidence_copy": it restates the first sentence of the evidence instead of answering;
    - "other_language": fewer than one word in ten is a common English word (French, Russian, …)."""
    faults = set()
    first = _words(_first_sentence(text))
    if len(first) >= 3 and sum(w in set(_words(question)) for w in first) >= 0.8 * len(first):
        faults.add("echo")
    if evidence and len(first) >= 3:
        lead = set(_words(_first_sentence(evidence[0])))
        if sum(w in lead for w in first) >= 0.8 * len(first):
            faults.add("evidence_copy")
    words = _words(text)
    if len(words) >= 6 and sum(w in FUNCTION_WORDS for w in words) < 0.1 * len(words):
        faults.add("other_language")
    return faults


def invented_documents(split: str) -> list[dict]:
    return read_jsonl(DATA / f"{split}.jsonl")


def cases(split: str) -> list[Case]:
    out = [Case(q["question"], q["answer"], "invented") for d in invented_documents(split) for q in d["questions"]]
    controls = EVAL_CONTROLS if split == "eval" else TRAIN_CONTROLS
    defined = {q for q, _ in SELF_DEFINED}
    out += [Case(q, a, "self_defined" if q in defined else "known") for q, a in controls]
    return out


def squad_cases(split: str) -> list[Case]:
    """SQuAD v1.1 dev questions of the split's articles; any gold span in the answer counts."""
    articles = SQUAD_SPLITS[split]
    return [
        Case(q["q"], "|".join(q["answers"]), "squad")
        for q in read_jsonl(SQUAD / "questions.jsonl")
        if q["doc"].split("#")[0] in articles
    ]


def squad_documents() -> list[DocumentInput]:
    """All 126 paragraphs (every split's), titled by their article, as a JSON upload gives them."""
    return [DocumentInput(d["text"], d["title"], f"squad:{d['id']}", d["id"]) for d in read_jsonl(SQUAD / "docs.jsonl")]


def build_index(
    data_dir: Path, index: DocumentIndex, msmarco_corpus: Path | None, split: str | tuple[str, ...], squad: bool = False
) -> DocumentIndex:
    """The split's invented documents (and SQuAD's paragraphs) mixed into the MS MARCO
    passages: retrieval must find them among thousands."""
    splits = (split,) if isinstance(split, str) else split
    docs = [
        DocumentInput(d["text"], d["title"], f"invented:{d['id']}", d["id"])
        for s in splits
        for d in invented_documents(s)
    ]
    if squad:
        docs += squad_documents()
    if msmarco_corpus is not None and msmarco_corpus.exists():
        docs += [
            DocumentInput(p["text"], p.get("title", ""), f"msmarco:{p['_id']}", p["_id"])
            for p in read_jsonl(msmarco_corpus)
        ]
    index.add_documents(docs)
    return index


def run_case(
    backend: Backend,
    template: ChatTemplate,
    unit: QueryUnit | None,
    case: Case,
    system_prompt: str,
    max_tokens: int = 80,
    evidence_style: EvidenceStyle = DEFAULT_STYLE,
) -> Outcome:
    messages = [ChatMessage("user", case.question)]
    prompt = template.prompt(messages, system_prompt)
    span = template.question_span(prompt, messages)
    turn = unit.begin_turn(case.question) if unit is not None else None
    start = time.perf_counter()
    paused_at = None
    pauses: list[float] = []
    evidence_has_answer = False
    evidence: list[str] = []
    done: DoneEvent | None = None
    for event in generate(
        backend,
        template,
        prompt,
        turn,
        GenerationParams(max_tokens=max_tokens, evidence_style=evidence_style),
        question_span=span,
    ):
        if isinstance(event, PauseEvent):
            paused_at = time.perf_counter()
        elif isinstance(event, EvidenceEvent):
            evidence_has_answer |= any(is_correct(p.text, case.answer) for p in event.passages)
            evidence += [p.text for p in event.passages]
        elif isinstance(event, (ResumeEvent, TokenEvent)) and paused_at is not None:
            pauses.append(time.perf_counter() - paused_at)  # search, reading and evidence prefill
            paused_at = None
        elif isinstance(event, DoneEvent):
            done = event
    assert done is not None
    return Outcome(
        case,
        done.text,
        is_correct(done.text, case.answer),
        done.searches,
        pauses,
        evidence_has_answer,
        time.perf_counter() - start,
        evidence,
    )
