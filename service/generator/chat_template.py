"""ChatML prompts built token by token, so message text can never become a control token.

Only the markers come from the special vocabulary; every role name and message body is
tokenized as plain text, whatever it contains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.generator.backend import Backend

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str


class ChatTemplate:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.start = backend.special_id("<|im_start|>")
        self.end = backend.special_id("<|im_end|>")
        self.newline = backend.tokenize("\n")

    def message(self, role: str, content: str) -> list[int]:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        tok = self.backend.tokenize
        return [self.start, *tok(role + "\n"), *tok(content), self.end, *self.newline]

    def assistant_start(self) -> list[int]:
        return [self.start, *self.backend.tokenize("assistant\n")]

    def prompt(self, messages: Sequence[ChatMessage], system_prompt: str | None = None) -> list[int]:
        ids: list[int] = []
        if system_prompt and not any(m.role == "system" for m in messages):
            ids += self.message("system", system_prompt)
        for m in messages:
            ids += self.message(m.role, m.content)
        return ids + self.assistant_start()

    def question_span(self, prompt: list[int], messages: Sequence[ChatMessage]) -> tuple[int, int] | None:
        """Token positions of the last user message's text inside `prompt`."""
        last = next((m for m in reversed(messages) if m.role == "user"), None)
        if last is None:
            return None
        body = self.backend.tokenize(last.content)
        # The prompt ends: <|im_start|>user\n BODY <|im_end|>\n [assistant turns…] <|im_start|>assistant\n
        end_markers = [self.end, *self.newline]
        for start in range(len(prompt) - len(body) - len(end_markers), -1, -1):
            if (
                prompt[start : start + len(body)] == body
                and prompt[start + len(body) : start + len(body) + len(end_markers)] == end_markers
            ):
                return start, start + len(body)
        return None

    def close_assistant(self) -> list[int]:
        """Ends an assistant message in the middle, so that another message can follow."""
        return [self.end, *self.newline]
