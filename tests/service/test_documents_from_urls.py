"""Documents from URLs, against a real page server on loopback: the article is indexed without
its menus, ads and footer, under the URL asked for, and cited; the guard refuses loopback by
default (nothing is requested), a redirect out of the allow-list, pages too large or too slow;
a refresh replaces changed text, leaves the same text alone, and keeps the document when the
page is gone; refresh follows the delete's access rules."""

from __future__ import annotations

import hashlib
import time

import httpx
import openai
import pytest

from retrieval import web_documents
from tests.live_server import serve_empty_index
from tests.sample_files import tiny_pdf
from tests.search_server import SearchServer

ARTICLE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>The Vellmar Canal Locks | Riverside Gazette</title></head>
<body>
<div class="topbar"><a href="/">Home</a> | <a href="/news">News</a> |
<a href="/subscribe">Subscribe to the Riverside Gazette today</a></div>
<div class="menu"><ul><li><a href="/weather">Weather</a></li><li><a href="/puzzles">Puzzles</a></li></ul></div>
<div class="ad-banner"><p>Advertisement: Glimmerfresh toothpaste is forty percent off this week at every
Harlow Pharmacy.</p></div>
<div class="content"><div class="story">
<h1>The Vellmar Canal Locks</h1>
<p>The Vellmar Canal climbs the Orsk valley through a flight of eleven locks, built between 1792 and
1801 by the engineer Marta Quillon.</p>
<p>Each lock raises a narrowboat about two metres, and a full passage of the flight takes nearly three
hours. The lock keepers still open the gates by hand, as they did when the canal opened.</p>
<p>The canal carried coal and limestone until 1936, when the railway to Orsk took its trade; volunteers
reopened it for pleasure boats in 1988.</p>
</div>
<div class="related"><h3>Most read</h3><ul><li><a href="/a">Mayor opens new car park</a></li>
<li><a href="/b">Bakery on Mill Street wins national award</a></li></ul></div>
</div>
<div class="ad-box"><p>Advertisement: Sunny breaks in Portavel from 99 pounds. Book with Larkspur Travel.</p></div>
<div class="site-footer"><p>Copyright 2024 Riverside Gazette Ltd. All rights reserved.</p>
<p><a href="/privacy">Privacy policy</a> | <a href="/cookies">Cookie settings</a></p></div>
</body></html>"""
BOILERPLATE = ["Subscribe", "Weather", "Glimmerfresh", "Most read", "Mill Street", "Larkspur", "Copyright", "Cookie"]
HTML = {"Content-Type": "text/html; charset=utf-8"}
KEYS = [
    {"key": "key-writer", "name": "writer", "read": ["team"], "write": ["team"]},
    {"key": "key-reader", "name": "reader", "read": ["team"], "write": []},
    {"key": "key-other", "name": "other", "read": ["elsewhere"], "write": ["elsewhere"]},
]


def page(site: SearchServer, path: str, body: bytes, headers: dict[str, str] | None = None, status: int = 200) -> str:
    """Serve `body` at `path` (an HTML page unless `headers` say otherwise); its URL."""
    site.pages[path] = (status, HTML if headers is None else headers, body)
    return site.url + path


@pytest.fixture(scope="module")
def site():
    served = SearchServer([])  # its pages, not its search
    yield served
    served.close()


@pytest.fixture(scope="module")
def base_url(llama_backend, embedder, tmp_path_factory):
    """The service allowed to fetch from 127.0.0.1 only, with small limits."""
    data = tmp_path_factory.mktemp("url_documents")
    limits = dict(web_fetch_allowed_networks=["127.0.0.1/32"], web_fetch_timeout_s=2, web_fetch_max_bytes=20_000)
    with serve_empty_index(llama_backend, embedder, data, **limits) as url:
        yield url


@pytest.fixture(scope="module")
def guarded_url(llama_backend, embedder, tmp_path_factory):
    """The service with the default guard (no network allowed beyond the public ones), and keys."""
    data = tmp_path_factory.mktemp("url_documents_guarded")
    with serve_empty_index(llama_backend, embedder, data, api_key="key-admin", api_keys=KEYS) as url:
        yield url


def post(base_url: str, body: dict, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.post(base_url + "/v1/documents", json=body, timeout=60, **kwargs)


def refresh(base_url: str, doc_id: str, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.post(f"{base_url}/v1/documents/{doc_id}/refresh", timeout=60, **kwargs)


def test_the_article_is_indexed_without_its_boilerplate_under_its_url_and_cited(base_url, site) -> None:
    url = page(site, "/canal", ARTICLE)
    made = post(base_url, {"url": url})
    assert made.status_code == 201, made.text
    result = made.json()["results"][0]
    assert result["status"] == "added" and result["name"] == url
    assert result["title"] == "The Vellmar Canal Locks"  # the page's own title, not the site's name
    assert result["id"] == hashlib.sha256(url.encode()).hexdigest()[:16]  # derived from the source

    document = httpx.get(f"{base_url}/v1/documents/{result['id']}").json()
    assert document["source"] == url and document["media_type"] == "text/html"
    assert "engineer Marta Quillon" in document["text"] and "pleasure boats in 1988" in document["text"]
    assert not [word for word in BOILERPLATE if word in document["text"]], document["text"]

    hits = httpx.get(base_url + "/v1/search", params={"q": "who built the Vellmar Canal locks"}).json()["data"]
    assert hits[0]["source"] == url and "Marta Quillon" in hits[0]["text"]
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=120)
    reply = client.chat.completions.create(
        model="x",
        messages=[{"role": "user", "content": "Who built the locks of the Vellmar Canal?"}],
        max_tokens=40,
        extra_body={"retrieval": "always"},
    )
    assert url in [s["source"] for s in reply.model_extra["sources"]]
    assert url in reply.choices[0].message.content  # the closing source list


def test_the_source_is_the_url_asked_for_not_where_its_redirects_ended(base_url, site) -> None:
    site.pages["/ferry"] = (301, {"Location": "/timetables/ferry-2025"}, b"")
    page(site, "/timetables/ferry-2025", b"<title>Orsk ferry</title><p>The Orsk ferry sails at dawn from Pellin.</p>")
    made = post(base_url, {"url": site.url + "/ferry", "title": "Ferry times", "collection": "travel"}).json()
    assert made["results"][0] | {"chunks": 1} == {
        "name": "Ferry times",
        "status": "added",
        "collection": "travel",
        "id": hashlib.sha256((site.url + "/ferry").encode()).hexdigest()[:16],
        "title": "Ferry times",  # a given title wins over the page's
        "chunks": 1,
    }
    document = httpx.get(f"{base_url}/v1/documents/{made['results'][0]['id']}", params={"collection": "travel"})
    assert document.json()["source"] == site.url + "/ferry"
    # The same URL again is the same document: nothing changed.
    again = post(base_url, {"url": site.url + "/ferry", "collection": "travel"}).json()
    assert again["results"][0]["status"] == "unchanged"


def test_a_batch_mixes_urls_of_each_type_and_text_and_one_failure_fails_alone(base_url, site) -> None:
    text = page(site, "/notes.txt", b"Tide notes\n\nHigh water at Pellin is at 06:12.", {"Content-Type": "text/plain"})
    pdf = page(
        site, "/leaflet.pdf", tiny_pdf(["Pellin lighthouse opens at noon."]), {"Content-Type": "application/pdf"}
    )
    body = {
        "documents": [
            {"url": text},
            {"url": pdf},
            {"text": "Pellin has one harbour and two piers."},
            {"url": site.url + "/missing"},
        ]
    }
    made = post(base_url, body)
    assert made.status_code == 201, made.text
    results = made.json()["results"]
    assert [r["status"] for r in results] == ["added", "added", "added", "failed"]
    assert results[0]["title"] == "Tide notes" and results[1]["title"] == "Harbour notes"
    assert results[3] == {"name": site.url + "/missing", "status": "failed", "error": "http_status: 404"}
    pdf_document = httpx.get(f"{base_url}/v1/documents/{results[1]['id']}").json()
    assert pdf_document["source"] == pdf and "lighthouse opens at noon" in pdf_document["text"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"url": "ftp://127.0.0.1/file"}, "url must be an http or https URL"),
        ({"url": "http:///no-host"}, "url must be an http or https URL"),
        ({"text": "Some text.", "url": "http://127.0.0.1/"}, "exactly one of them"),
        ({"title": "neither"}, "exactly one of them"),
        ({"url": "http://127.0.0.1/", "source": "elsewhere"}, "leave source out"),
        ({"documents": [{"text": "fine"}, {"url": "file:///etc/passwd"}]}, "documents.1.url"),
    ],
)
def test_a_document_with_neither_or_both_or_a_bad_url_is_a_400(base_url, body, says) -> None:
    answer = post(base_url, body)
    assert answer.status_code == 400 and says in answer.json()["error"]["message"], answer.text


def test_the_default_guard_refuses_loopback_without_requesting_it(guarded_url, site) -> None:
    url = page(site, "/canal", ARTICLE)
    before = len(site.requests)
    answer = post(guarded_url, {"url": url}, headers={"Authorization": "Bearer key-admin"})
    assert answer.status_code == 422, answer.text
    error = answer.json()["job"]["results"][0]["error"]
    assert error.startswith("refused: 127.0.0.1 resolves to a non-public address (127.0.0.1)")
    assert "RAGPAUSE_WEB_FETCH_ALLOWED_NETWORKS" in error
    assert "refused" in answer.json()["error"]["message"]
    assert len(site.requests) == before  # never requested


def test_a_redirect_out_of_the_allow_list_is_refused(base_url, site) -> None:
    for target, address in (("http://10.0.0.7/admin", "10.0.0.7"), ("http://127.0.0.2/", "127.0.0.2")):
        site.pages["/away"] = (302, {"Location": target}, b"")
        answer = post(base_url, {"url": site.url + "/away"})
        assert answer.status_code == 422, answer.text
        error = answer.json()["job"]["results"][0]["error"]
        assert error.startswith("refused") and f"non-public address ({address})" in error


def test_too_large_and_too_slow_pages_fail_with_their_reasons(base_url, site) -> None:
    big = page(site, "/big", b"<p>" + b"salt marsh " * 3000 + b"</p>")  # 33 kB, the limit is 20 kB
    answer = post(base_url, {"url": big})
    assert answer.status_code == 422
    assert answer.json()["job"]["results"][0]["error"] == "too large: the page passes the limit of 20000 bytes"

    site.pages["/slow"] = (200, HTML, b"<p>Slow news.</p>")
    site.delays["/slow"] = 4.0
    start = time.monotonic()
    answer = post(base_url, {"url": site.url + "/slow"})
    assert answer.status_code == 422 and time.monotonic() - start < 4
    assert answer.json()["job"]["results"][0]["error"].startswith("timeout")


def test_refresh_replaces_changed_text_and_leaves_the_same_text_alone(base_url, site) -> None:
    head = b"<title>Pellin bridge</title><h1>Pellin bridge</h1>"
    old = head + b"<p>The Pellin swing bridge opens for boats at nine.</p>"
    new = head + b"<p>The Pellin swing bridge now opens at half past ten.</p>"
    url = page(site, "/bridge", old)
    doc_id = post(base_url, {"url": url}).json()["results"][0]["id"]
    assert "at nine" in httpx.get(f"{base_url}/v1/documents/{doc_id}").json()["text"]

    page(site, "/bridge", new)
    changed = refresh(base_url, doc_id)
    assert changed.status_code == 201, changed.text
    assert changed.json()["results"][0] | {"chunks": 1} == {
        "name": url,
        "status": "replaced",
        "collection": "default",
        "id": doc_id,
        "title": "Pellin bridge",
        "chunks": 1,
    }
    document = httpx.get(f"{base_url}/v1/documents/{doc_id}").json()
    assert "half past ten" in document["text"] and "at nine" not in document["text"]
    hits = httpx.get(base_url + "/v1/search", params={"q": "when does the Pellin swing bridge open"}).json()["data"]
    assert hits[0]["document_id"] == doc_id and "half past ten" in hits[0]["text"]
    assert not [h for h in hits if "at nine" in h["text"]]

    assert refresh(base_url, doc_id).json()["results"][0]["status"] == "unchanged"

    del site.pages["/bridge"]  # gone: the refresh fails, the document stays as it was
    gone = refresh(base_url, doc_id)
    assert gone.status_code == 422 and "http_status: 404" in gone.json()["error"]["message"]
    assert "half past ten" in httpx.get(f"{base_url}/v1/documents/{doc_id}").json()["text"]


def test_refresh_needs_a_url_source_and_a_known_document(base_url) -> None:
    made = post(base_url, {"text": "Harbour dues rose in May.", "source": "notes/dues.md", "id": "dues"})
    assert made.status_code == 201
    not_url = refresh(base_url, "dues")
    assert not_url.status_code == 400 and not_url.json()["error"]["code"] == "no_url_source"
    assert "notes/dues.md" in not_url.json()["error"]["message"]
    assert refresh(base_url, "no-such-document").status_code == 404
    assert refresh(base_url, "dues", params={"collection": "travel"}).status_code == 404


def test_refresh_follows_the_delete_access_rules_and_the_guard(guarded_url, site) -> None:
    url = page(site, "/team-notice", b"<p>The team meets on Thursdays at the Pellin boathouse.</p>")
    text = {"text": "The team meets on Thursdays.", "source": url, "id": "notice"}
    made = post(guarded_url, text, params={"collection": "team"}, headers={"Authorization": "Bearer key-writer"})
    assert made.status_code == 201, made.text

    def as_key(key: str) -> httpx.Response:
        return refresh(guarded_url, "notice", params={"collection": "team"}, headers={"Authorization": f"Bearer {key}"})

    assert as_key("key-reader").status_code == 403  # may read the collection, not change it
    assert as_key("key-other").status_code == 404  # may not even see it
    assert as_key("wrong").status_code == 401
    before = len(site.requests)
    refused = as_key("key-writer")  # allowed, and then the default guard refuses loopback
    assert refused.status_code == 422 and "refused" in refused.json()["error"]["message"]
    assert len(site.requests) == before
    writer = {"Authorization": "Bearer key-writer"}
    document = httpx.get(f"{guarded_url}/v1/documents/notice", params={"collection": "team"}, headers=writer)
    assert document.json()["text"] == "The team meets on Thursdays."


def test_a_page_trafilatura_finds_nothing_in_is_read_by_the_html_reader(monkeypatch) -> None:
    import trafilatura

    monkeypatch.setattr(trafilatura, "bare_extraction", lambda *args, **kwargs: None)
    page = web_documents.read_page(
        b"<title>Tides</title><main><p>High water at 06:12.</p></main>", "http://x/t", "text/html"
    )
    assert (page.title, page.text) == ("Tides", "High water at 06:12.")
