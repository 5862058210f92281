"""The web search client and the page fetcher against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from retrieval.page_fetch import PageFetcher
from retrieval.web_search import FieldMap, JSONSearchClient, WebSearcher, WebSearchFailed, searxng_client
from tests.search_server import SearchServer

CORPUS = [
    {
        "title": "Vellmora harbour",
        "url": "https://example.org/vellmora",
        "content": "Vellmora is a harbour town on the Estrian coast.",
    },
    {
        "title": "Glass eels",
        "url": "https://example.org/eels",
        "content": "Glass eels arrive at Vellmora every spring.",
    },
]


@pytest.fixture()
def server():
    s = SearchServer(CORPUS, slow_s=2.0)
    yield s
    s.close()


def fast(client: JSONSearchClient) -> JSONSearchClient:
    client.timeout = httpx.Timeout(0.5, connect=0.5)
    client.backoff_s = 0.01
    return client


def run(coro):
    return asyncio.run(coro)


def test_searxng_results(server) -> None:
    result = run(fast(searxng_client(server.url)).search("Vellmora harbour", k=5))
    assert result.ok and result.attempts == 1
    assert [p.source for p in result.passages] == ["https://example.org/vellmora", "https://example.org/eels"]
    assert result.passages[0].title == "Vellmora harbour" and result.passages[0].score > result.passages[1].score
    assert "format=json" in server.requests[-1]


def test_generic_json_endpoint_with_mapped_fields(server) -> None:
    server.pages["/api"] = (
        200,
        {"Content-Type": "application/json"},
        b'{"data": {"hits": [{"name": "Eels", "link": "https://e.org/1", "snippet": "Eels swim."}, {"name": "x"}]}}',
    )
    client = fast(
        JSONSearchClient(
            url=server.url + "/api", fields=FieldMap("data.hits", title="name", url="link", text="snippet")
        )
    )
    result = run(client.search("eels"))
    assert result.ok and [(p.title, p.source, p.text) for p in result.passages] == [
        ("Eels", "https://e.org/1", "Eels swim.")
    ]


@pytest.mark.parametrize(
    "mode, kind, retried",
    [
        ("slow", "timeout", True),
        ("error500", "http_status", True),
        ("error404", "http_status", False),
        ("garbage", "invalid_json", False),
        ("wrong_shape", "bad_response", False),
        ("empty", "empty", False),
    ],
)
def test_failures_are_error_values(server, mode, kind, retried) -> None:
    server.mode = mode
    client = fast(searxng_client(server.url, retries=2))
    start = time.perf_counter()
    result = run(client.search("Vellmora"))
    assert not result.ok and result.error.kind == kind and result.passages == ()
    assert result.attempts == (3 if retried else 1)
    assert time.perf_counter() - start < 5, "bounded: retries x timeout, never a hang"


def test_connection_refused_is_an_error_value() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    result = run(fast(searxng_client(f"http://127.0.0.1:{port}", retries=1)).search("x"))
    assert result.error.kind == "connection" and result.attempts == 2


def test_transient_failures_are_retried_with_backoff(server) -> None:
    server.fail_first = 2
    result = run(fast(searxng_client(server.url, retries=2)).search("eels"))
    assert result.ok and result.attempts == 3


def test_searcher_adapter_raises_a_named_error(server) -> None:
    server.mode = "garbage"
    with pytest.raises(WebSearchFailed) as failed:
        WebSearcher(fast(searxng_client(server.url))).search("eels")
    assert failed.value.error.kind == "invalid_json"
    server.mode = "ok"
    assert WebSearcher(fast(searxng_client(server.url))).search("eels")[0].title == "Glass eels"


def test_page_fetch_reads_main_text_within_limits(server) -> None:
    server.pages["/article"] = (
        200,
        {"Content-Type": "text/html"},
        b"<title>Eels</title><nav>menu</nav><p>Eels migrate at night.</p>",
    )
    server.pages["/big"] = (200, {"Content-Type": "text/plain"}, b"salt " * 100_000)
    server.pages["/hop"] = (302, {"Location": "/article"}, b"")
    fetcher = PageFetcher(max_bytes=10_000, timeout_s=2, allow_private=True)  # the stub lives on loopback
    page = run(fetcher.fetch(server.url + "/article"))
    assert page.ok and page.title == "Eels" and page.text == "Eels migrate at night."
    big = run(fetcher.fetch(server.url + "/big"))
    assert big.ok and big.truncated and len(big.text) <= 10_000
    assert run(fetcher.fetch(server.url + "/hop")).text == "Eels migrate at night."


def test_page_fetch_refuses_private_addresses_and_other_schemes(server) -> None:
    fetcher = PageFetcher(timeout_s=2)
    before = len(server.requests)
    for url in [
        server.url + "/article",  # loopback
        "http://10.1.2.3/",  # private: refused before any connection is tried
        "http://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
        "http://[::1]:80/",
        "ftp://example.org/file",
        "file:///etc/passwd",
    ]:
        page = run(fetcher.fetch(url))
        assert not page.ok and page.error.startswith("refused"), url
    assert len(server.requests) == before


def test_every_redirect_hop_is_checked(server) -> None:
    server.pages["/article"] = (200, {"Content-Type": "text/plain"}, b"Eels.")
    server.pages["/escape"] = (302, {"Location": "http://10.0.0.7/admin"}, b"")
    fetcher = PageFetcher(timeout_s=2, allowed_networks=("127.0.0.0/8",))  # the stub's own network only
    assert run(fetcher.fetch(server.url + "/article")).text == "Eels."
    page = run(fetcher.fetch(server.url + "/escape"))
    assert page.error.startswith("refused") and "10.0.0.7" in page.error


def test_slow_page_hits_the_time_limit(server) -> None:
    server.mode = "slow"
    fetcher = PageFetcher(timeout_s=0.5, allow_private=True)
    start = time.perf_counter()
    page = run(fetcher.fetch(server.url + "/search?q=eels&format=json"))
    assert page.error.startswith("timeout") and time.perf_counter() - start < 2


def test_searcher_reads_the_top_pages_in_full(server) -> None:
    server.corpus = [
        {"title": "Eels", "url": server.url + "/eels", "content": "short snippet"},
        {"title": "Private", "url": "http://10.9.9.9/secret", "content": "kept snippet"},
    ]
    server.pages["/eels"] = (
        200,
        {"Content-Type": "text/html"},
        b"<title>Eel page</title><p>Glass eels reach Vellmora in April.</p>",
    )
    fetcher = PageFetcher(timeout_s=2, allowed_networks=("127.0.0.0/8",))
    found = WebSearcher(fast(searxng_client(server.url)), fetcher, fetch_pages=2).search("eels snippet")
    by_title = {p.title: p.text for p in found}
    assert by_title["Eel page"] == "Glass eels reach Vellmora in April."
    assert by_title["Private"] == "kept snippet"  # refused page: the snippet stays
