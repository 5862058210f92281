"""The chat page in headless Chromium (Debian's, driven by Playwright): add a document through
the page, ask about what it defines, and see the pause, the search and the source drawn; stop
a long answer midway and go on chatting."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.known_fact import ANSWER, QUESTION, SYSTEM_PROMPT, assert_decisive
from tests.live_server import serve_empty_index

CHROMIUM = "/usr/bin/chromium"
DOCUMENT = (
    "The Kessaly Observatory sits on Mount Arvend. Its founder, the astronomer Tovin Ashgrove, "
    "built it in 1731 to watch the comet he named Velra."
)


@pytest.fixture(scope="module")
def base_url(llama_backend, embedder, tmp_path_factory):
    data = tmp_path_factory.mktemp("chat_page")
    with serve_empty_index(llama_backend, embedder, data) as url:
        yield url


@contextmanager
def chat_page(base_url: str) -> Iterator[Page]:
    """The page open in headless chromium; no script error may happen while it is used."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(base_url + "/")
            expect(page).to_have_title("ragpause")
            yield page
            assert not errors, errors
        finally:
            browser.close()


def test_the_page_shows_the_pause_the_search_and_the_source(base_url) -> None:
    with chat_page(base_url) as page:
        page.click("#add-doc summary")
        page.fill("#doc-title", "Kessaly Observatory")
        page.fill("#doc-text", DOCUMENT)
        page.click("#doc-add")
        expect(page.locator("#doc-status")).to_contain_text("added", timeout=60_000)

        page.fill("#question", "Who founded the Kessaly Observatory?")
        page.click("#send")
        pause = page.locator(".turn .pause").first
        expect(pause).to_contain_text("searched for", timeout=60_000)
        expect(pause).to_contain_text("Kessaly")
        expect(pause.locator("ol.found li").first).to_contain_text("Kessaly Observatory", timeout=60_000)
        sources = page.locator(".turn .sources")
        expect(sources).to_contain_text("Kessaly Observatory", timeout=60_000)
        expect(page.locator(".turn .answer")).to_contain_text("Ashgrove")


def test_stop_ends_the_answer_frees_its_slot_and_the_chat_goes_on(base_url, llama_backend) -> None:
    assert_decisive(llama_backend, SYSTEM_PROMPT)
    with chat_page(base_url) as page:
        page.select_option("#retrieval", "off")
        page.fill("#question", "Write a very long story about a dragon who learns to bake bread.")
        page.click("#send")
        expect(page.locator("#send")).to_be_disabled()
        answer = page.locator(".turn .answer").first
        expect(answer).to_contain_text("dragon", timeout=60_000)
        page.click("#stop")
        expect(answer.locator(".stopped")).to_have_text(" (stopped)", timeout=10_000)
        expect(page.locator("#send")).to_be_enabled()
        expect(page.locator("#stop")).to_be_hidden()
        # The service saw the client leave: the answer ended without finishing, its slot free.
        deadline = time.monotonic() + 10
        while 'ragpause_answers_total{finish="cancelled"} 1.0' not in httpx.get(base_url + "/metrics").text:
            assert time.monotonic() < deadline, "the stopped answer was never cancelled"
            time.sleep(0.1)
        assert httpx.get(base_url + "/health").json()["generating"] == 0

        page.fill("#question", QUESTION)
        page.click("#send")
        expect(page.locator(".turn .answer").nth(1)).to_contain_text(ANSWER, timeout=60_000)


def test_the_page_signs_in_with_a_key_that_has_plus_slash_and_equals(llama_backend, embedder, tmp_path) -> None:
    # Base64 keys hold +, / and =; the form stores the key URL-encoded, and the server
    # compared that encoding with the key, so such a key could never sign in.
    key = "k+y/Ab9=="
    with serve_empty_index(llama_backend, embedder, tmp_path, api_key=key) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url + "/")
            expect(page.locator("form")).to_contain_text("needs its API key")
            page.fill("input[name=k]", key)
            page.click("button")
            expect(page).to_have_title("ragpause", timeout=30_000)
            # The page's own requests carry the cookie and pass.
            status = page.evaluate("fetch('/v1/models').then(r => r.status)")
            assert status == 200
            page.context.clear_cookies()
            page.context.add_cookies([{"name": "ragpause_key", "value": "wrong", "url": url}])
            assert page.evaluate("fetch('/v1/models').then(r => r.status)") == 401
        finally:
            browser.close()
