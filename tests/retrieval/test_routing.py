"""Local first, web when the local index has nothing close: against a real loopback server."""

from __future__ import annotations

import httpx
import pytest

from retrieval.routing import RoutedSearcher
from retrieval.web_search import WebSearcher, WebSearchFailed, searxng_client
from tests.search_server import SearchServer

WEB = [
    {
        "title": "Narth lighthouse",
        "url": "https://example.org/narth",
        "content": "The Narth lighthouse keeper is Ilse Varro since 2011.",
    },
]


@pytest.fixture()
def server():
    s = SearchServer(WEB)
    yield s
    s.close()


def web(server: SearchServer) -> WebSearcher:
    return WebSearcher(searxng_client(server.url, timeout=httpx.Timeout(1.0), retries=0))


def test_strong_local_match_does_not_touch_the_web(starter_index, server) -> None:
    found = RoutedSearcher(starter_index, web(server)).search("Where was Zorblax Quintaro born?")
    assert "zorblax" in found[0].source and server.requests == []


def test_weak_local_match_goes_to_the_web(starter_index, server) -> None:
    found = RoutedSearcher(starter_index, web(server)).search("Who keeps the Narth lighthouse?")
    assert any(p.source == "https://example.org/narth" for p in found)
    assert len(server.requests) == 1


def test_web_failure_is_raised_only_when_nothing_local_helps(starter_index, server) -> None:
    server.mode = "error500"
    with pytest.raises(WebSearchFailed):
        RoutedSearcher(starter_index, web(server)).search("Who keeps the Narth lighthouse?")
    assert "zorblax" in RoutedSearcher(starter_index, web(server)).search("Zorblax Quintaro birthplace")[0].source


def test_questions_about_now_also_ask_the_web(starter_index, server) -> None:
    found = RoutedSearcher(starter_index, web(server)).search("What is the latest news about Zorblax Quintaro?")
    assert len(server.requests) == 1
    assert any("zorblax" in p.source for p in found)  # the strong local match stays
