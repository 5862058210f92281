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
from query_unit.protocol import QueryUnit, Turn
from query_unit.turn import TurnConfig, UnitTools
from query_unit.types import FollowUp
from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from retrieval.index_protocol import KnowledgeIndex
from retrieval.page_fetch import PageFetcher
from retrieval.routing import RoutedSearcher
from retrieval.types import Searcher
from retrieval.web_search import FieldMap, JSONSearchClient, WebSearcher, searxng_client
from service.generator.backend import Backend
from service.generator.chat_template import ChatMessage, ChatTemplate
from service.generator.decode_loop import GenerationParams, generate, question_signals
from service.generator.events import Event
from service.generator.loading import load_backend
from service.generator.remote import RemoteGenerator, generate_remote
from service.runtime.conversation import last_question
from service.settings import Settings

log = logging.getLogger(__name__)


Retrieval = Literal["off", "auto", "always"]
Sources = Literal["auto", "local", "web", "both"]


class NoWebSearch(ValueError):
    """A request asked for web sources, and no web search endpoint is configured."""


class Runtime:
    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        index: KnowledgeIndex,
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
        self.searchers = self.searchers_for(None)
        self.tools = UnitTools(
            searcher=self.searchers["auto"],
            count_tokens=lambda text: len(backend.tokenize(text)),
            embed=index.embedder.encode,
            local=index,
            config=TurnConfig(
                max_searches=settings.unit.max_searches_per_turn,
                evidence_token_budget=settings.unit.evidence_token_budget,
            ),
        )
        self.learned = LearnedWeights.load() if settings.unit.query_unit == "learned" else None
        if (
            self.learned is not None
            and self.learned.uses_hidden_states
            and not getattr(backend, "hidden_states", False)
        ):
            # Its weights read components of the hidden state: without one its gate would see
            # only the training mean. (Runtime.load builds backends that report it.)
            log.warning(
                "the learned query unit needs a backend that reports hidden states; the heuristic unit decides instead"
            )
            self.learned = None

    def searchers_for(self, collections: list[str] | None) -> dict[str, Searcher | None]:
        """Where a request's queries go, by its `sources` switch ("auto": local first, the web
        when nothing local is close or the question is about now); locally, only `collections`
        (None: every collection)."""
        local = self.index.scoped(collections)
        similarity = self.settings.retrieval.web_fallback_similarity
        web = self.web
        return {
            "auto": RoutedSearcher(local, web, similarity),
            "local": local,
            "web": web,
            "both": RoutedSearcher(local, web, similarity, always_web=True) if web else None,
        }

    def unit_for(
        self, retrieval: Retrieval, sources: Sources, collections: list[str] | None = None
    ) -> QueryUnit | None:
        """The query unit one request asked for; None when it may not search. It searches only
        `collections` of the local index (None: all), and its gate reads only them too."""
        if retrieval == "off":
            return None
        searchers = self.searchers if collections is None else self.searchers_for(collections)
        searcher = searchers[sources]
        if searcher is None:
            raise NoWebSearch(f"sources={sources!r} needs a web search endpoint; set RAGPAUSE_WEB_SEARCH_URL")
        tools = replace(self.tools, searcher=searcher, local=self.index.scoped(collections))
        if retrieval == "always":
            return AlwaysRetrieveUnit(tools)
        if self.learned is not None:
            return LearnedUnit(tools, self.learned, target_rate=self.settings.unit.learned_target_rate)
        return HeuristicUnit(tools, HeuristicConfig(prob_threshold=self.settings.unit.pause_prob_threshold))

    @classmethod
    def load(cls, settings: Settings) -> Runtime:
        # The learned unit reads hidden states when its weights were trained on them.
        hidden = settings.unit.query_unit == "learned" and LearnedWeights.load().uses_hidden_states
        backend = load_backend(settings, hidden_states=hidden)
        if backend.name == "llama_cpp":
            from service.generator import llama_build

            # A machine-specific build answers differently from other machines: say so.
            (log.info if llama_build.baseline() else log.warning)("%s", llama_build.describe())
        remote = remote_generator(settings)
        if remote is not None:
            remote.check()  # a server without logprobs would answer every question with nothing
        # Remote answers take slots too: each slot's local model scores its questions.
        more_slots = [load_backend(settings, hidden_states=hidden) for _ in range(settings.model.generation_slots - 1)]
        embedder = Embedder(
            settings.retrieval.embedder_path, settings.retrieval.embedder_backend, settings.data_dir / "embedders"
        )
        index = local_index(settings, embedder)
        starter = settings.starter_dir()
        if starter.is_dir():
            # Unchanged files are recognised by their content hash: only the first start indexes them.
            results = index.add_paths([starter])
            added = sum(r.status in ("added", "replaced") for r in results)
            log.info("starter corpus %s: %d files, %d newly indexed", starter, len(results), added)
        return cls(settings, backend, index, web_searcher(settings), more_slots, remote)

    def prompt(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self.template.prompt(messages, self.settings.model.system_prompt)

    def chat(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        retrieval: Retrieval = "auto",
        prompt: list[int] | None = None,
        sources: Sources = "auto",
        backend: Backend | None = None,
        follow_up: FollowUp | None = None,
        collections: list[str] | None = None,
    ) -> Iterator[Event]:
        """Answer the conversation (`prompt`: its tokens, when the caller already has them) on
        `backend` (a generation slot; default the first), searching only `collections` of the
        local index (None: all). Not thread-safe: the worker calls it."""
        question = last_question(messages)
        unit = self.unit_for(retrieval, sources, collections)
        turn = unit.begin_turn(question, follow_up) if unit is not None else None
        if self.remote is not None:
            return self._remote_chat(messages, turn, params, prompt, backend or self.backend)
        prompt = prompt if prompt is not None else self.prompt(messages)
        span = self.template.question_span(prompt, messages)
        return generate(backend or self.backend, self.template, prompt, turn, params, question_span=span)

    def _remote_chat(
        self,
        messages: Sequence[ChatMessage],
        turn: Turn | None,
        params: GenerationParams,
        prompt: list[int] | None,
        scorer: Backend,
    ) -> Iterator[Event]:
        assert self.remote is not None
        question = None
        if turn is not None:
            # The local model reads the question: how unfamiliar its words are to a language model.
            prompt = prompt if prompt is not None else self.prompt(messages)
            span = self.template.question_span(prompt, messages)
            scores = scorer.load_prompt(list(prompt), score_from=span[0]).scores
            question = question_signals(scorer, prompt, span, scores)
        system_prompt = self.settings.model.system_prompt
        yield from generate_remote(self.remote, messages, system_prompt, turn, params, question)


def local_index(settings: Settings, embedder: Embedder) -> KnowledgeIndex:
    """The index settings.retrieval.index names: the embedded one under the data dir, or Milvus."""
    if settings.retrieval.index == "milvus":
        from retrieval.milvus_index import MilvusIndex  # pymilvus loads only when it is used

        token = settings.retrieval.milvus_token
        return MilvusIndex(settings.milvus_location(), embedder, token=token.get_secret_value() if token else None)
    return DocumentIndex(settings.data_dir, embedder, hnsw_threshold=settings.retrieval.hnsw_threshold)


def remote_generator(settings: Settings) -> RemoteGenerator | None:
    if settings.model.backend != "remote":
        return None
    if not settings.model.remote_url:
        raise ValueError("RAGPAUSE_BACKEND=remote needs RAGPAUSE_REMOTE_URL")
    key = settings.model.remote_api_key.get_secret_value() if settings.model.remote_api_key else None
    return RemoteGenerator(
        settings.model.remote_url,
        settings.model.remote_model,
        key,
        settings.model.remote_timeout_s,
        extra_body=settings.model.remote_extra_body,
    )


def web_searcher(settings: Settings) -> Searcher | None:
    """The configured web search endpoint, or None."""
    if not settings.retrieval.web_search_url:
        return None
    options = dict(
        timeout=httpx.Timeout(settings.retrieval.web_timeout_s, connect=min(2.0, settings.retrieval.web_timeout_s)),
        retries=settings.retrieval.web_retries,
    )
    if settings.retrieval.web_search_kind == "searxng":
        client = searxng_client(settings.retrieval.web_search_url, **options)
    else:
        fields = FieldMap(
            settings.retrieval.web_results_path,
            settings.retrieval.web_title_field,
            settings.retrieval.web_url_field,
            settings.retrieval.web_text_field,
        )
        client = JSONSearchClient(url=settings.retrieval.web_search_url, fields=fields, **options)
    fetcher = PageFetcher(
        max_bytes=settings.retrieval.web_fetch_max_bytes,
        timeout_s=settings.retrieval.web_fetch_timeout_s,
        allowed_networks=tuple(settings.retrieval.web_fetch_allowed_networks),
    )
    return WebSearcher(client, fetcher, settings.retrieval.web_fetch_pages)
