"""Request bodies: OpenAI's chat completion (plus our per-request switches) and documents."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from retrieval.ingest_plan import COLLECTION_NAME
from retrieval.web_documents import is_web_url
from service.generator.decode_loop import GenerationParams
from service.generator.sampling import SamplingParams

COLLECTION_PATTERN = COLLECTION_NAME.pattern
COLLECTION_HELP = (
    "The collection it goes to (lowercase letters, digits, '-', '_'); default: the upload's, or 'default'."
)


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None  # token id (as a string) -> -100..100
    # This service never calls a tool and never constrains its output to JSON. OpenAI's
    # semantics let a model answer without calling any of the tools it is offered (clients such
    # as Open WebUI offer theirs with every message), so tools are accepted and answered in
    # text; only a request that forces a call, or asks for JSON, hears that it cannot be served.
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)  # OpenAI's range: a signed 64-bit integer
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    n: int = Field(default=1, ge=1, le=1)
    # Ours. retrieval: never search ("off"), search when the query unit finds knowledge
    # missing ("auto"), or search with the question before answering ("always").
    retrieval: Literal["off", "auto", "always"] = "auto"
    # Where searches go: "local" index, "web" endpoint, "both", or "auto" (local first, the
    # web when nothing local is close or the question asks about now).
    sources: Literal["auto", "local", "web", "both"] = "auto"
    # The local collections it may search (each readable by the caller's key); none named:
    # every collection the key may read.
    collections: list[Annotated[str, Field(pattern=COLLECTION_PATTERN)]] | None = Field(default=None, max_length=64)

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    @field_validator("logit_bias")
    @classmethod
    def _token_ids_and_bounded_biases(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value and len(value) > 300:
            raise ValueError(f"logit_bias takes at most 300 tokens, not {len(value)}")
        for key, bias in (value or {}).items():
            if not (key.isascii() and key.isdigit() and len(key) <= 9):
                raise ValueError(f"logit_bias keys are token ids; {key!r} is not one")
            if not -100 <= bias <= 100:
                raise ValueError(f"logit_bias values lie between -100 and 100, not {bias}")
        return value

    @field_validator("tool_choice", "function_call")
    @classmethod
    def _no_forced_tool_call(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if value not in (None, "none", "auto"):
            raise ValueError("this service never calls tools or functions: a call cannot be forced ('auto' or 'none')")
        return value

    @field_validator("response_format")
    @classmethod
    def _text_only(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("type", "text") != "text":
            raise ValueError(f"response_format {value.get('type')!r} is not supported: answers are plain text")
        return value

    def bias_pairs(self) -> tuple[tuple[int, float], ...]:
        return tuple((int(key), float(bias)) for key, bias in (self.logit_bias or {}).items())

    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def token_limit(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default

    def to_generation_params(self, max_tokens: int) -> GenerationParams:
        """How to decode this answer, `max_tokens` already clamped to the context."""
        sampling = SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            top_k_signals=max(5, self.top_logprobs or 0),
            frequency_penalty=self.frequency_penalty,
            presence_penalty=self.presence_penalty,
            logit_bias=self.bias_pairs(),
        )
        return GenerationParams(max_tokens=max_tokens, sampling=sampling, stop=self.stop_list())


class DocumentText(BaseModel):
    """A document given by its text, or by a URL that the service fetches (exactly one)."""

    text: str | None = Field(default=None, min_length=1, description="The document's text (plain or Markdown).")
    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="An http(s) page (or PDF, or text file) to fetch and index instead of text: its main text and "
        "title are kept, and the URL is its source, which POST /v1/documents/{id}/refresh fetches again.",
    )
    title: str = Field(default="", description="Its title; default: the heading of the text, or the page's title.")
    source: str = Field(default="", description="Where text came from: a URL or a path, shown in citations.")
    id: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:\-]+$")
    collection: str | None = Field(default=None, pattern=COLLECTION_PATTERN, description=COLLECTION_HELP)

    @field_validator("url")
    @classmethod
    def _web_url(cls, value: str | None) -> str | None:
        if value is not None and not is_web_url(value):
            raise ValueError("url must be an http or https URL with a host")
        return value.strip() if value is not None else None

    @model_validator(mode="after")
    def _text_or_url(self) -> DocumentText:
        if (self.text is None) == (self.url is None):
            raise ValueError("give a document's text or its url (exactly one of them)")
        if self.url is not None and self.source:
            raise ValueError("a document fetched from a url has that url as its source: leave source out")
        return self


class DocumentBatch(BaseModel):
    documents: list[DocumentText] = Field(min_length=1)
    collection: str | None = Field(default=None, pattern=COLLECTION_PATTERN, description=COLLECTION_HELP)
