"""The loaded service: model, template, index and query unit, created once at start-up."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Literal

import httpx

from query_unit.always import AlwaysRetrieveUnit
from query_unit.heuristic import HeuristicConfig, HeuristicUnit
from query_unit.learned import LearnedUnit, LearnedWeights
from query_unit.protocol import QueryUnit
from query_unit.turn import TurnConfig, UnitTools
from query_unit.types import FollowUp
from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from retrieval.page_fetch import PageFetcher
from retrieval.routing import RoutedSearcher
from retrieval.types import Searcher
from retrieval.web_search import FieldMap, JSONSearchClient, WebSearcher, searxng_client
from service.citations import has_source_list
from service.generator.backend import Backend
from service.generator.chat_template import ChatMessage, ChatTemplate
from service.generator.decode_loop import GenerationParams, generate, question_signals
from service.generator.events import Event
from service.generator.loading import load_backend
from service.generator.remote import RemoteGenerator, RemoteParams, generate_remote
from service.settings import Settings

log = logging.getLogger(__name__)


Retrieval = Literal["off", "auto", "always"]
Sources = Literal["auto", "local", "web", "both"]


class NoWebSearch(ValueError):
    """A request asked for web sources, and no web search endpoint is configured."""


class Engine:
    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        index: DocumentIndex,
        web: Searcher | None = None,
        more_slots: Sequence[Backend] = (),
        remote: RemoteGenerator | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        # Generation slots: the first backend and more contexts of the same model.
        self.slots: list[Backend] = [backend, *more_slots]
        # With a remote generator, the local model only tokenizes (lengths, evidence budgets).
        self.remote = remote
        self.template = ChatTemplate(backend)
        self.index = index
        self.web = web
        similarity = settings.web_fallback_similarity
        # Where a request's queries go, by its `sources` switch ("auto": local first, the web
        # when nothing local is close or the question is about now).
        self.searchers: dict[str, Searcher | None] = {
            "auto": RoutedSearcher(index, web, similarity),
            "local": index,
            "web": web,
            "both": RoutedSearcher(index, web, similarity, always_web=True) if web else None,
        }
        self.tools = UnitTools(
            searcher=self.searchers["auto"],
            count_tokens=lambda text: len(backend.tokenize(text)),
            embed=index.embedder.encode,
            local=index,
            config=TurnConfig(
                max_searches=settings.max_searches_per_turn, evidence_token_budget=settings.evidence_token_budget
            ),
        )
        self.learned = LearnedWeights.load() if settings.query_unit == "learned" else None
        if self.learned is not None and self.learned.uses_hidden_states and not getattr(backend, "hidden_states", False):
            # Its weights read components of the hidden state: without one its gate would see
            # only the training mean. (Engine.load builds engines that report it.)
            log.warning("the learned query unit needs an engine that reports hidden states; the heuristic unit decides instead")
            self.learned = None

    def unit_for(self, retrieval: Retrieval, sources: Sources) -> QueryUnit | None:
        """The query unit one request asked for; None when it may not search."""
        if retrieval == "off":
            return None
        searcher = self.searchers[sources]
        if searcher is None:
            raise NoWebSearch(f"sources={sources!r} needs a web search endpoint; set RAGPAUSE_WEB_SEARCH_URL")
        tools = replace(self.tools, searcher=searcher)
        if retrieval == "always":
            return AlwaysRetrieveUnit(tools)
        if self.learned is not None:
            return LearnedUnit(tools, self.learned, target_rate=self.settings.learned_target_rate)
        return HeuristicUnit(tools, HeuristicConfig(prob_threshold=self.settings.pause_prob_threshold))

    @classmethod
    def load(cls, settings: Settings) -> "Engine":
        # The learned unit reads hidden states when its weights were trained on them.
        hidden = settings.query_unit == "learned" and LearnedWeights.load().uses_hidden_states
        backend = load_backend(settings, hidden_states=hidden)
        if backend.name == "llama_cpp":
            from service.generator import llama_build

            # A machine-specific build answers differently from other machines: say so.
            (log.info if llama_build.baseline() else log.warning)("%s", llama_build.describe())
        remote = remote_generator(settings)
        if remote is not None:
            remote.check()  # a server without logprobs would answer every question with nothing
        # Remote answers take slots too: each slot's local model scores its questions.
        more_slots = [load_backend(settings, hidden_states=hidden) for _ in range(settings.generation_slots - 1)]
        embedder = Embedder(settings.embedder_path, settings.embedder_engine, settings.data_dir / "embedders")
        index = DocumentIndex(settings.data_dir, embedder, hnsw_threshold=settings.hnsw_threshold)
        starter = settings.starter_dir()
        if starter.is_dir():
            # Unchanged files are recognised by their content hash: only the first start indexes them.
            results = index.add_paths([starter])
            added = sum(r.status in ("added", "replaced") for r in results)
            log.info("starter corpus %s: %d files, %d newly indexed", starter, len(results), added)
        return cls(settings, backend, index, web_searcher(settings), more_slots, remote)

    def prompt(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self.template.prompt(messages, self.settings.system_prompt)

    def chat(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        retrieval: Retrieval = "auto",
        prompt: list[int] | None = None,
        sources: Sources = "auto",
        backend: Backend | None = None,
        follow_up: FollowUp | None = None,
    ) -> Iterator[Event]:
        """Answer the conversation (`prompt`: its tokens, when the caller already has them) on
        `backend` (a generation slot; default the first). Not thread-safe: the worker calls it."""
        question = last_question(messages)
        unit = self.unit_for(retrieval, sources)
        monitor = unit.begin_turn(question, follow_up) if unit is not None else None
        if self.remote is not None:
            remote_params = RemoteParams(
                max_tokens=params.max_tokens,
                temperature=params.sampling.temperature,
                top_p=params.sampling.top_p,
                seed=params.sampling.seed,
                stop=params.stop,
                frequency_penalty=params.sampling.frequency_penalty,
                presence_penalty=params.sampling.presence_penalty,
                logit_bias=params.sampling.logit_bias,
            )
            return self._remote_chat(messages, monitor, remote_params, prompt, backend or self.backend)
        prompt = prompt if prompt is not None else self.prompt(messages)
        span = self.template.question_span(prompt, messages)
        return generate(backend or self.backend, self.template, prompt, monitor, params, question_span=span)


    def _remote_chat(
        self, messages: Sequence[ChatMessage], monitor, params: RemoteParams, prompt: list[int] | None, scorer: Backend  # type: ignore[no-untyped-def]
    ) -> Iterator[Event]:
        question = None
        if monitor is not None:
            # The local model reads the question: how unfamiliar its words are to a language model.
            prompt = prompt if prompt is not None else self.prompt(messages)
            span = self.template.question_span(prompt, messages)
            scores = scorer.load_prompt(list(prompt), score_from=span[0]).scores
            question = question_signals(scorer, prompt, span, scores)
        yield from generate_remote(self.remote, messages, self.settings.system_prompt, monitor, params, question)  # type: ignore[arg-type]


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


def remote_generator(settings: Settings) -> RemoteGenerator | None:
    if settings.backend != "remote":
        return None
    if not settings.remote_url:
        raise ValueError("RAGPAUSE_BACKEND=remote needs RAGPAUSE_REMOTE_URL")
    key = settings.remote_api_key.get_secret_value() if settings.remote_api_key else None
    return RemoteGenerator(settings.remote_url, settings.remote_model, key, settings.remote_timeout_s, extra_body=settings.remote_extra_body)


def web_searcher(settings: Settings) -> Searcher | None:
    """The configured web search endpoint, or None."""
    if not settings.web_search_url:
        return None
    options = dict(timeout=httpx.Timeout(settings.web_timeout_s, connect=min(2.0, settings.web_timeout_s)), retries=settings.web_retries)
    if settings.web_search_kind == "searxng":
        client = searxng_client(settings.web_search_url, **options)
    else:
        fields = FieldMap(settings.web_results_path, settings.web_title_field, settings.web_url_field, settings.web_text_field)
        client = JSONSearchClient(url=settings.web_search_url, fields=fields, **options)
    fetcher = PageFetcher(
        max_bytes=settings.web_fetch_max_bytes,
        timeout_s=settings.web_fetch_timeout_s,
        allowed_networks=tuple(settings.web_fetch_allowed_networks),
    )
    return WebSearcher(client, fetcher, settings.web_fetch_pages)
