"""Generation on a remote OpenAI-compatible server that returns token logprobs (vLLM,
llama.cpp's server, llama-cpp-python's server), through httpx.

The server does the heavy work and can scale out; the query unit still watches every token
through the logprobs the server streams back. A pause closes the stream (the server stops
generating), the evidence goes in as chat messages (the kept draft as an assistant message,
the search results as a user message) and a new request continues the answer. What a remote
server cannot offer is our KV-cache rollback: each continuation is a new request, so the
server's prefix cache (vLLM's automatic prefix caching, llama.cpp's slot cache) is what keeps
it from recomputing the conversation.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import httpx

from query_unit.protocol import Turn
from query_unit.types import Evidence, QuestionSignals, TokenStep
from service.generator.chat_template import ChatMessage
from service.generator.decode_loop import GenerationParams
from service.generator.events import Event
from service.generator.evidence_block import EvidenceStyle, evidence_text
from service.generator.pause_machine import PauseMachine

# Spellings that chat templates treat as markup (<|im_start|>, [INST], <s>…): a remote server
# renders messages to text before tokenizing, so document text is defanged on its way there.
_MARKUP = re.compile(r"<\|[^|>]{0,40}\|>|\[/?INST\]|</?s>|<<SYS>>|<</SYS>>")


def defang(text: str) -> str:
    """Break template markup in untrusted text with a zero-width space: it stays readable and
    can no longer become a control token on the server."""
    return _MARKUP.sub(lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:], text)


NO_LOGPROBS = (
    "the generation server returned no token logprobs, which the query unit reads to decide when to search "
    "(llama-cpp-python's server: start it with --logits_all true; vLLM and llama.cpp's llama-server give them)"
)


class RemoteError(RuntimeError):
    """The remote server refused, failed, or answered without logprobs."""


def token_step(entry: dict[str, Any]) -> TokenStep:
    """A TokenStep from one OpenAI logprobs entry: probability of the chosen token, and entropy
    and margin over the top alternatives the server returned (the rest counted as one lump)."""
    prob = math.exp(max(-80.0, float(entry["logprob"])))
    alternatives = entry.get("top_logprobs") or []
    top = sorted((math.exp(max(-80.0, float(t["logprob"]))) for t in alternatives), reverse=True) or [prob]
    rest = max(0.0, 1.0 - sum(top))
    entropy = -sum(p * math.log(p) for p in [*top, rest] if p > 0)
    margin = top[0] - top[1] if len(top) > 1 else top[0]
    return TokenStep(token_id=-1, text=entry["token"], prob=prob, entropy=entropy, margin=margin, top=())


class RemoteGenerator:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        top_logprobs: int = 5,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(timeout_s, connect=5.0)
        self.client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)
        self.model = model
        self.top_logprobs = top_logprobs
        self.extra_body = extra_body or {}

    def check(self) -> None:
        """Ask the server for one token with its logprobs, as every answer will; a server that
        answers without them (or fails) is named with what to change. An unreachable one is
        left for later: it may still be starting."""
        body = {
            **self.extra_body,
            "model": self.model,
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 1,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
        }
        try:
            response = self.client.post("/v1/chat/completions", json=body)
        except httpx.TransportError:
            return
        if response.status_code != 200:
            raise RemoteError(
                f"the generation server answered a one-token probe with {response.status_code}: {response.text[:300]}"
            )
        choices = response.json().get("choices") or [{}]
        if not ((choices[0].get("logprobs") or {}).get("content")):
            raise RemoteError(NO_LOGPROBS)

    def stream(self, messages: list[dict[str, str]], params: GenerationParams) -> Iterator[TokenStep | str]:
        """Each token as a TokenStep, then the finish reason as a string. Closing the iterator
        closes the connection, which stops the server generating. The server samples and applies
        the stop strings; the logit bias holds token ids of the remote model."""
        sampling = params.sampling
        body = {
            **self.extra_body,
            "model": self.model,
            "messages": messages,
            "stream": True,
            "max_tokens": params.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
            **({"seed": sampling.seed} if sampling.seed is not None else {}),
            **({"frequency_penalty": sampling.frequency_penalty} if sampling.frequency_penalty else {}),
            **({"presence_penalty": sampling.presence_penalty} if sampling.presence_penalty else {}),
            **({"logit_bias": {str(t): b for t, b in sampling.logit_bias}} if sampling.logit_bias else {}),
            **({"stop": list(params.stop)} if params.stop else {}),
        }
        try:
            with self.client.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise RemoteError(f"the generation server answered {response.status_code}: {response.text[:300]}")
                finish: str | None = None
                for line in response.iter_lines():
                    if line.strip() == "data: [DONE]":
                        finish = finish or "stop"
                        continue
                    if not line.startswith("data: "):
                        continue
                    chunk = json.loads(line[6:])
                    if "error" in chunk:
                        raise RemoteError(f"the generation server failed: {chunk['error']}")
                    for choice in chunk.get("choices") or []:
                        content = (choice.get("delta") or {}).get("content")
                        entries = ((choice.get("logprobs") or {}).get("content")) or []
                        if content and not entries:
                            raise RemoteError(NO_LOGPROBS)
                        for entry in entries:
                            yield token_step(entry)
                        finish = choice.get("finish_reason") or finish
                if finish is None:
                    # A server whose generation failed after its 200 (llama-cpp-python's, asked for
                    # logprobs it cannot give) just ends the stream: that is no empty answer.
                    raise RemoteError(
                        "the generation server's stream ended before the answer did (no finish_reason); see its log"
                    )
                yield finish
        except httpx.HTTPError as exc:
            raise RemoteError(f"the generation server could not be reached: {exc}") from exc


def generate_remote(
    remote: RemoteGenerator,
    messages: Sequence[ChatMessage],
    system_prompt: str,
    turn: Turn | None,
    params: GenerationParams,
    question: QuestionSignals | None = None,
) -> Iterator[Event]:
    """The decode loop's events, from a remote server: tokens, pauses, evidence, resumes, done.

    `question`: the question's signals for the gate before the first token. OpenAI-compatible
    servers do not agree on prompt logprobs (vLLM's `prompt_logprobs`, the legacy `echo`,
    off by one in some), so the backend scores the question with its local model instead.
    """
    own_system = system_prompt and not any(m.role == "system" for m in messages)
    conversation = [{"role": "system", "content": system_prompt}] if own_system else []
    conversation += [{"role": m.role, "content": m.content} for m in messages]
    resumer = RequestResumer(conversation)
    machine: PauseMachine[str] = PauseMachine(turn, resumer)
    finish = "length"
    first = machine.begin(question)
    if first is not None:
        yield from machine.pause(first)
    while machine.completion_tokens < params.max_tokens:
        resumed = False
        left = replace(params, max_tokens=params.max_tokens - machine.completion_tokens)
        tokens = remote.stream(resumer.messages(), left)
        try:
            for item in tokens:
                if isinstance(item, str):
                    finish = "length" if item == "length" else "stop"
                    break
                pause = machine.observe(item)
                while pause is not None:
                    resumed = yield from machine.pause(pause)
                    # Nothing usable came back: the draft goes on from this very token (the
                    # stream waited meanwhile); asked again, the unit no longer searches for it.
                    pause = None if resumed else machine.observe(item)
                if resumed:
                    break  # closing the stream stops the server; a new request follows the evidence
                yield machine.accept(item.text, item.text, item)
        finally:
            tokens.close()
        if not resumed:
            break
    yield from machine.close("".join(machine.segment), finish, prompt_tokens=0, evaluated_tokens=0, reused_tokens=0)


class RequestResumer:
    """Resumes with a new request: the kept draft closes as an assistant message, the evidence
    follows as a user message, and the server writes a new assistant turn after them."""

    def __init__(self, conversation: list[dict[str, str]]) -> None:
        self.conversation = conversation
        self.added: list[dict[str, str]] = []  # kept drafts and evidence, after the conversation

    def messages(self) -> list[dict[str, str]]:
        """What the next request sends."""
        return self.conversation + self.added

    def text(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)

    def admit(self, evidence: Evidence, kept: Sequence[str], opening: bool) -> Evidence:
        """The server's context is its own to manage: evidence always goes in."""
        return evidence

    def resume(self, evidence: Evidence, kept: Sequence[str]) -> int:
        """Returns the evidence's length in words: the remote model's tokens are not known here."""
        draft = self.text(kept)
        shown = replace(evidence, passages=tuple(replace(p, text=defang(p.text)) for p in evidence.passages))
        # A retry restates the question right after the facts.
        style: EvidenceStyle = "facts_then_question" if evidence.retry else "numbered_results"
        text = evidence_text(shown, style, draft_kept=bool(draft))
        self.added.extend([{"role": "assistant", "content": draft}] if draft else [])
        self.added.append({"role": "user", "content": text})
        return len(text.split())
