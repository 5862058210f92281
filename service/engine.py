"""The loaded service: model, template, index and query unit, created once at start-up."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import httpx

from query_unit.heuristic import HeuristicConfig, HeuristicUnit
from query_unit.learned import LearnedUnit
from query_unit.protocol import QueryUnit, Searcher
from query_unit.routing import RoutedSearcher
from query_unit.turn import TurnConfig, UnitTools
from retrieval.document_index import DocumentIndex
from retrieval.embedder import Embedder
from retrieval.page_fetch import PageFetcher
from retrieval.web_search import FieldMap, JSONSearchClient, WebSearcher, searxng_client
from service.generator.backend import Backend
from service.generator.chat_template import ChatMessage, ChatTemplate
from service.generator.decode_loop import GenerationParams, generate
from service.generator.events import Event
from service.generator.loading import load_backend
from service.settings import Settings

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, settings: Settings, backend: Backend, index: DocumentIndex) -> None:
        self.settings = settings
        self.backend = backend
        self.template = ChatTemplate(backend)
        self.index = index
        self.searcher = RoutedSearcher(index, web_searcher(settings), settings.web_fallback_similarity)
        tools = UnitTools(
            searcher=self.searcher,
            count_tokens=lambda text: len(backend.tokenize(text)),
            embed=index.embedder.encode,
            local=index,
            config=TurnConfig(
                max_searches=settings.max_searches_per_turn, evidence_token_budget=settings.evidence_token_budget
            ),
        )
        self.unit: QueryUnit
        if settings.query_unit == "learned":
            self.unit = LearnedUnit(tools, target_rate=settings.learned_target_rate)
        else:
            self.unit = HeuristicUnit(tools, HeuristicConfig(prob_threshold=settings.pause_prob_threshold))

    @classmethod
    def load(cls, settings: Settings) -> "Engine":
        backend = load_backend(settings)
        embedder = Embedder(settings.embedder_path, settings.embedder_engine, settings.data_dir / "embedders")
        index = DocumentIndex(settings.data_dir, embedder, hnsw_threshold=settings.hnsw_threshold)
        starter = settings.starter_dir()
        if starter.is_dir():
            # Unchanged files are recognised by their content hash: only the first start indexes them.
            results = index.add_paths([starter])
            added = sum(r.status in ("added", "replaced") for r in results)
            log.info("starter corpus %s: %d files, %d newly indexed", starter, len(results), added)
        return cls(settings, backend, index)

    def prompt(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self.template.prompt(messages, self.settings.system_prompt)

    def chat(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        retrieval: str = "auto",
        prompt: list[int] | None = None,
    ) -> Iterator[Event]:
        """Answer the conversation (`prompt`: its tokens, when the caller already has them);
        not thread-safe (the worker runs one at a time)."""
        question = next((m.content for m in reversed(messages) if m.role == "user"), "")
        monitor = self.unit.begin_turn(question) if retrieval != "off" else None
        prompt = prompt if prompt is not None else self.prompt(messages)
        span = self.template.question_span(prompt, messages)
        return generate(self.backend, self.template, prompt, monitor, params, question_span=span)


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
