"""Generation on a remote OpenAI-compatible server that returns token logprobs (vLLM,
llama.cpp's server, llama-cpp-python's server), through httpx.

The server does the heavy work and can scale out; the query unit still watches every token
through the logprobs the server streams back. A pause closes the stream (the server stops
generating), the evidence goes in as chat messages (the kept draft as an assistant message,
the search results as a user message) and a new request continues the answer. What a remote
engine cannot offer is our KV-cache rollback: each continuation is a new request, so the
server's prefix cache (vLLM's automatic prefix caching, llama.cpp's slot cache) is what keeps
it from recomputing the conversation.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx

from query_unit.protocol import TurnMonitor
from query_unit.types import Pause, QuestionSignals, TokenStep
from retrieval.types import Passage
from service.generator.chat_template import ChatMessage
from service.generator.decode_loop import SearchNotes, closing_events, join_text
from service.generator.events import Event, EvidenceEvent, PauseEvent, ResumeEvent, TokenEvent
from service.generator.evidence_block import evidence_text

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


@dataclass(frozen=True)
class RemoteParams:
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # token ids of the remote model


def token_step(entry: dict[str, Any]) -> TokenStep:
    """A TokenStep from one OpenAI logprobs entry: probability of the chosen token, and entropy
    and margin over the top alternatives the server returned (the rest counted as one lump)."""
    prob = math.exp(max(-80.0, float(entry["logprob"])))
    top = sorted((math.exp(max(-80.0, float(t["logprob"]))) for t in entry.get("top_logprobs") or []), reverse=True) or [prob]
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
        self.client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=httpx.Timeout(timeout_s, connect=5.0))
        self.model = model
        self.top_logprobs = top_logprobs
        self.extra_body = extra_body or {}

    def check(self) -> None:
        """Ask the server for one token with its logprobs, as every answer will; a server that
        answers without them (or fails) is named with what to change. An unreachable one is
        left for later: it may still be starting."""
        body = {**self.extra_body, "model": self.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1,
                "logprobs": True, "top_logprobs": self.top_logprobs}
        try:
            response = self.client.post("/v1/chat/completions", json=body)
        except httpx.TransportError:
            return
        if response.status_code != 200:
            raise RemoteError(f"the generation server answered a one-token probe with {response.status_code}: {response.text[:300]}")
        choices = response.json().get("choices") or [{}]
        if not ((choices[0].get("logprobs") or {}).get("content")):
            raise RemoteError(NO_LOGPROBS)

    def stream(self, messages: list[dict[str, str]], params: RemoteParams) -> Iterator[TokenStep | str]:
        """Each token as a TokenStep, then the finish reason as a string. Closing the iterator
        closes the connection, which stops the server generating."""
        body = {
            **self.extra_body,
            "model": self.model,
            "messages": messages,
            "stream": True,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
            **({"seed": params.seed} if params.seed is not None else {}),
            **({"frequency_penalty": params.frequency_penalty} if params.frequency_penalty else {}),
            **({"presence_penalty": params.presence_penalty} if params.presence_penalty else {}),
            **({"logit_bias": {str(t): b for t, b in params.logit_bias}} if params.logit_bias else {}),
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
                    raise RemoteError("the generation server's stream ended before the answer did (no finish_reason); see its log")
                yield finish
        except httpx.HTTPError as exc:
            raise RemoteError(f"the generation server could not be reached: {exc}") from exc



def generate_remote(
    remote: RemoteGenerator,
    messages: Sequence[ChatMessage],
    system_prompt: str,
    monitor: TurnMonitor | None,
    params: RemoteParams,
    question: QuestionSignals | None = None,
) -> Iterator[Event]:
    """The decode loop's events, from a remote server: tokens, pauses, evidence, resumes, done.

    `question`: the question's signals for the gate before the first token. OpenAI-compatible
    servers do not agree on prompt logprobs (vLLM's `prompt_logprobs`, the legacy `echo`,
    off by one in some), so the engine scores the question with its local model instead.
    """
    conversation = [{"role": "system", "content": system_prompt}] if system_prompt and not any(m.role == "system" for m in messages) else []
    conversation += [{"role": m.role, "content": m.content} for m in messages]
    added: list[dict[str, str]] = []  # kept drafts and evidence, after the conversation
    segment: list[str] = []
    committed = ""
    completion_tokens = searches = 0
    sources: list[Passage] = []
    notes = SearchNotes()
    finish = "length"

    def take(pause: Pause) -> Iterator[Event]:
        """Search for a pause; on evidence, end the segment (the caller starts a new request)."""
        nonlocal segment, committed, completion_tokens, searches, resumed
        assert monitor is not None
        searches += 1
        yield PauseEvent(reason=pause.reason, query=pause.query, retracted="".join(segment[pause.keep_tokens :]), kept_tokens=pause.keep_tokens)
        evidence = monitor.gather(pause)
        yield EvidenceEvent(query=evidence.query, passages=evidence.passages, error=evidence.error)
        if evidence.ok:
            kept = "".join(segment[: pause.keep_tokens])
            shown = replace(evidence, passages=tuple(replace(p, text=defang(p.text)) for p in evidence.passages))
            text = evidence_text(shown, "facts_then_question" if evidence.retry else "numbered_results", draft_kept=bool(kept))
            # As in the local loop: this segment's kept draft closes as an assistant message,
            # the evidence follows as a user message, and a new assistant turn goes on.
            added.extend([{"role": "assistant", "content": kept}] if kept else [])
            added.append({"role": "user", "content": text})
            completion_tokens -= len(segment) - pause.keep_tokens
            committed = join_text(committed, kept)
            sources.extend(p for p in evidence.passages if p not in sources)
            segment = []
            monitor.resumed(pause.keep_tokens)
            resumed = True
            yield ResumeEvent(kept_tokens=pause.keep_tokens, evidence_tokens=len(text.split()))
        else:
            notes.record(evidence)

    resumed = False
    first = monitor.before_generation(question) if monitor else None
    if first is not None:
        yield from take(first)
    while completion_tokens < params.max_tokens:
        resumed = False
        tokens = remote.stream(conversation + added, replace(params, max_tokens=params.max_tokens - completion_tokens))
        try:
            for item in tokens:
                if isinstance(item, str):
                    finish = "length" if item == "length" else "stop"
                    break
                pause = monitor.observe(item) if monitor else None
                while pause is not None and not resumed:
                    yield from take(pause)
                    # Nothing usable came back: the draft goes on from this very token (the
                    # stream waited meanwhile); asked again, the unit no longer searches for it.
                    pause = None if resumed else monitor.observe(item)  # type: ignore[union-attr]
                if resumed:
                    break  # closing the stream stops the server; a new request follows the evidence
                segment.append(item.text)
                completion_tokens += 1
                final = monitor.committed() if monitor else len(segment)
                yield TokenEvent(text=item.text, step=item, committed=final)
        finally:
            tokens.close()
        if not resumed:
            break
    yield from closing_events(
        join_text(committed, "".join(segment)),
        notes,
        finish_reason=finish,
        prompt_tokens=0,
        completion_tokens=completion_tokens,
        evaluated_tokens=0,
        reused_tokens=0,
        searches=searches,
        sources=tuple(sources),
    )

