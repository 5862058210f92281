"""How evidence enters the context mid-answer.

Measured on SmolLM2-135M with four invented facts (see the closing note of issue 2): a user
message with numbered search results after the draft, then a fresh assistant turn, got 4/4
facts into the answer; an in-turn block 3/4; a system message 3/4; "Context/Question" 3/4.
Passage text is tokenized as plain text: it cannot open or close a message.
"""

from __future__ import annotations

from query_unit.types import Evidence
from service.generator.chat_template import ChatTemplate


def evidence_text(evidence: Evidence) -> str:
    lines = [f'Search results for "{evidence.query}":']
    for n, passage in enumerate(evidence.passages, start=1):
        # Titles stay out: the model copies them verbatim; they reach the user as citations.
        lines.append(f"[{n}] {passage.text}")
    return "\n".join(lines)


def evidence_block(template: ChatTemplate, evidence: Evidence, draft_kept: bool) -> list[int]:
    """Tokens that close the draft, show the results as a user message and reopen the answer."""
    ask = "Continue your answer using these results." if draft_kept else "Use these results to answer my question."
    return [
        *template.close_assistant(),
        *template.message("user", evidence_text(evidence) + "\n\n" + ask),
        *template.assistant_start(),
    ]
