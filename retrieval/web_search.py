"""Web search over HTTP: SearxNG's JSON API, or any JSON search endpoint, through httpx.

Every failure comes back as a `WebSearchError` value with a kind that says what went wrong
(connection, timeout, http_status, invalid_json, bad_response, empty); nothing raises.
Connection failures, timeouts, 429 and 5xx are retried a bounded number of times.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import httpx

from retrieval.types import Passage

if TYPE_CHECKING:
    from retrieval.page_fetch import PageFetcher

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class WebSearchError:
    kind: str  # connection | timeout | http_status | invalid_json | bad_response | empty
    message: str
    status: int | None = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True, slots=True)
class WebSearchResult:
    query: str
    passages: tuple[Passage, ...] = ()
    error: WebSearchError | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Where a JSON endpoint keeps its results and what it calls their fields."""

    results_path: str = "results"  # dotted path to the list
    title: str = "title"
    url: str = "url"
    text: str = "content"


@dataclass
class JSONSearchClient:
    url: str
    query_param: str = "q"
    extra_params: dict[str, str] = field(default_factory=dict)
    fields: FieldMap = field(default_factory=FieldMap)
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(5.0, connect=2.0))
    retries: int = 2
    backoff_s: float = 0.25
    headers: dict[str, str] = field(default_factory=lambda: {"Accept": "application/json"})
    transport: httpx.AsyncBaseTransport | None = None

    async def search(self, query: str, k: int = 5) -> WebSearchResult:
        params = {**self.extra_params, self.query_param: query}
        error: WebSearchError | None = None
        attempt = 0
        async with httpx.AsyncClient(timeout=self.timeout, headers=self.headers, transport=self.transport) as client:
            for attempt in range(1, self.retries + 2):
                if attempt > 1:
                    await asyncio.sleep(self.backoff_s * 2 ** (attempt - 2))
                try:
                    response = await client.get(self.url, params=params)
                except httpx.TimeoutException as exc:
                    error = WebSearchError("timeout", f"no answer from {self.url} in time ({type(exc).__name__})")
                    continue
                except httpx.TransportError as exc:
                    error = WebSearchError("connection", f"cannot reach {self.url}: {exc or type(exc).__name__}")
                    continue
                if response.status_code >= 400:
                    error = WebSearchError(
                        "http_status", f"{self.url} answered {response.status_code}", response.status_code
                    )
                    if response.status_code in RETRY_STATUSES:
                        continue
                    break
                return self._parse(query, response, k, attempt)
        return WebSearchResult(query, error=error, attempts=attempt)

    def _parse(self, query: str, response: httpx.Response, k: int, attempt: int) -> WebSearchResult:
        try:
            body: Any = response.json()
        except ValueError:
            return WebSearchResult(
                query, error=WebSearchError("invalid_json", f"{self.url} did not send JSON"), attempts=attempt
            )
        items = body
        for key in filter(None, self.fields.results_path.split(".")):
            items = items.get(key) if isinstance(items, dict) else None
        if not isinstance(items, list):
            return WebSearchResult(
                query,
                error=WebSearchError("bad_response", f"no result list at {self.fields.results_path!r}"),
                attempts=attempt,
            )
        passages = []
        for rank, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            text = str(item.get(self.fields.text) or "").strip()
            url = str(item.get(self.fields.url) or "")
            if not text or not url:
                continue
            title = str(item.get(self.fields.title) or "")
            passages.append(Passage(text=text, source=url, title=title, score=1.0 / (rank + 1)))
            if len(passages) >= k:
                break
        if not passages:
            return WebSearchResult(query, error=WebSearchError("empty", f"no results for {query!r}"), attempts=attempt)
        return WebSearchResult(query, tuple(passages), attempts=attempt)


def searxng_client(base_url: str, **options: Any) -> JSONSearchClient:
    """SearxNG: GET /search?q=…&format=json → results[] with title, url, content."""
    return JSONSearchClient(url=base_url.rstrip("/") + "/search", extra_params={"format": "json"}, **options)


class WebSearchFailed(RuntimeError):
    def __init__(self, error: WebSearchError) -> None:
        super().__init__(str(error))
        self.error = error


class WebSearcher:
    """The query unit's Searcher over a web client. Called from the generation thread, which
    has no event loop of its own; a failed search raises WebSearchFailed for the unit to report.

    With a page fetcher, the top `fetch_pages` results are read in full (concurrently, within
    the fetcher's limits) and their page text replaces the snippet; a page that cannot be
    fetched keeps its snippet.
    """

    def __init__(
        self, client: JSONSearchClient, fetcher: PageFetcher | None = None, fetch_pages: int = 0, page_chars: int = 4000
    ) -> None:
        self.client = client
        self.fetcher = fetcher
        self.fetch_pages = fetch_pages if fetcher is not None else 0
        self.page_chars = page_chars

    def search(self, query: str, k: int = 4) -> list[Passage]:
        return asyncio.run(self._search(query, k))

    async def _search(self, query: str, k: int) -> list[Passage]:
        result = await self.client.search(query, k)
        if result.error is not None:
            raise WebSearchFailed(result.error)
        passages = list(result.passages)
        if self.fetch_pages and self.fetcher is not None:
            top = passages[: self.fetch_pages]
            pages = await asyncio.gather(*(self.fetcher.fetch(p.source) for p in top))
            for n, page in enumerate(pages):
                if page.ok and page.text:
                    passages[n] = replace(
                        passages[n], text=page.text[: self.page_chars], title=page.title or passages[n].title
                    )
        return passages
