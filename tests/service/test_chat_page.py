"""The chat page in headless Chromium (Debian's, driven by Playwright): add a document through
the page, ask about what it defines, and see the pause, the search and the source drawn."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from retrieval.document_index import DocumentIndex
from tests.live_server import serve_engine

CHROMIUM = "/usr/bin/chromium"
DOCUMENT = (
    "The Kessaly Observatory sits on Mount Arvend. Its founder, the astronomer Tovin Ashgrove, "
    "built it in 1731 to watch the comet he named Velra."
)


@pytest.fixture(scope="module")
def base_url(llama_backend, embedder, tmp_path_factory):
    data = tmp_path_factory.mktemp("chat_page")
    with serve_engine(llama_backend, DocumentIndex(data, embedder), data_dir=data) as url:
        yield url


def test_the_page_shows_the_pause_the_search_and_the_source(base_url) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(base_url + "/")
            expect(page).to_have_title("ragpause")

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
            assert not errors, errors
        finally:
            browser.close()
