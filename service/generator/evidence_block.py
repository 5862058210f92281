"""How evidence enters the context.

Mid-answer, the draft is closed, the evidence comes as a user message, and a fresh assistant
turn resumes. Before the first answer token, the evidence follows the question's message
directly as a second user message. Passage text is tokenized as plain text: it cannot open or
close a message. The styles were compared on the tune split (README, "Answers from documents":
SQuAD tune articles, training invented entities and controls); the default has the best mean.
"""

from __future__ import annotations

from typing import Literal

from query_unit.types import Evidence
from service.generator.chat_template import ChatTemplate

EvidenceStyle = Literal[
    "numbered_then_question",
    "passages_then_question",
    "titled_passages_then_question",
    "numbered_results",
    "context_then_question",
    "facts_then_question",
]
DEFAULT_STYLE: EvidenceStyle = "numbered_results"


def evidence_text(evidence: Evidence, style: EvidenceStyle = DEFAULT_STYLE, draft_kept: bool = False) -> str:
    question = evidence.question or evidence.query
    # The default leaves titles out: the model copies them verbatim; they reach the user as
    # citations.
    if style == "passages_then_question":
        return "\n\n".join([*(p.text for p in evidence.passages), question])
    if style == "titled_passages_then_question":
        return "\n\n".join([*(f"{p.title}: {p.text}" if p.title else p.text for p in evidence.passages), question])
    if style in ("numbered_results", "numbered_then_question"):
        lines = [f'Search results for "{evidence.query}":']
        lines += [f"[{n}] {p.text}" for n, p in enumerate(evidence.passages, start=1)]
        if style == "numbered_then_question":
            ask = question
        else:
            ask = (
                "Continue your answer using these results."
                if draft_kept
                else "Use these results to answer my question."
            )
        return "\n".join(lines) + "\n\n" + ask
    facts = " ".join(p.text for p in evidence.passages)
    if style == "context_then_question":
        return f"Context: {facts}\n\nQuestion: {question}"
    return f"Here is what I found: {facts}\n\nUsing only that, answer briefly: {question}"


def evidence_block(
    template: ChatTemplate,
    evidence: Evidence,
    draft_kept: bool,
    style: EvidenceStyle = DEFAULT_STYLE,
    after_question: bool = False,
) -> list[int]:
    """Tokens that show the evidence as a user message and open a new answer.

    `after_question`: nothing was answered yet, so the block follows the question's message
    directly (the assistant header is rewritten after it); otherwise it first closes the draft.
    A retry restates the question right after the facts, whatever the style."""
    text = evidence_text(evidence, "facts_then_question" if evidence.retry else style, draft_kept)
    close = [] if after_question else template.close_assistant()
    return [*close, *template.message("user", text), *template.assistant_start()]
