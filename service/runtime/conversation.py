"""Reading a conversation: the question a turn answers, and what came before it."""

from __future__ import annotations

from collections.abc import Sequence

from query_unit.types import FollowUp
from service.answer.citations import has_source_list
from service.generator.chat_template import ChatMessage


def last_question(messages: Sequence[ChatMessage]) -> str:
    """The question a turn answers: the last user message."""
    return next((m.content for m in reversed(messages) if m.role == "user"), "")


FOLLOW_UP_QUESTIONS = 2  # earlier questions a follow-up may refer back to
FOLLOW_UP_WORDS = 40


def follow_up(messages: Sequence[ChatMessage]) -> FollowUp | None:
    """The conversation before the last question, as the query unit reads it (messages as the
    client sent them, source lists included): the two questions before it, and whether an
    answer since then was drawn from sources. None for a first question."""
    asked = [i for i, m in enumerate(messages) if m.role == "user"]
    if len(asked) < 2:
        return None
    earlier = asked[-1 - FOLLOW_UP_QUESTIONS : -1]
    words = " ".join(messages[i].content for i in reversed(earlier)).split()
    sourced = any(m.role == "assistant" and has_source_list(m.content) for m in messages[earlier[0] : asked[-1]])
    return FollowUp(" ".join(words[:FOLLOW_UP_WORDS]), sourced)
