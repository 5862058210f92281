"""The chat page in headless Chromium (Debian's, driven by Playwright): add a document through
the page, ask about what it defines, and see the pause, the search and the source drawn; add one
by URL and see why the default guard refused it; stop a long answer midway and go on chatting;
open the passage a citation cites, with the citing sentence's words marked; keep conversations
in the browser across reloads, reopen, export and delete them."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Route, expect, sync_playwright

from tests.known_fact import ANSWER, QUESTION, SYSTEM_PROMPT, assert_decisive
from tests.live_server import serve_empty_index

CHROMIUM = "/usr/bin/chromium"
TITLE = "Kessaly Observatory"
ASK = "Who founded the Kessaly Observatory?"  # it pauses, searches and cites the document
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


def test_the_page_adds_a_page_by_its_url_and_says_why_one_is_refused(base_url) -> None:
    # This service keeps the default guard: a loopback URL is refused, and the page says why.
    with chat_page(base_url) as page:
        page.click("#add-doc summary")
        page.fill("#doc-url", "http://127.0.0.1:9/notes")
        page.click("#doc-add")
        refused = "refused: 127.0.0.1 resolves to a non-public address"
        expect(page.locator("#doc-status")).to_contain_text(refused, timeout=60_000)


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


def ensure_document(base_url: str) -> None:
    """The document in the index, whichever test put it there."""
    listed = httpx.get(base_url + "/v1/documents").json()["data"]
    if not any(d["title"] == TITLE for d in listed):
        added = httpx.post(base_url + "/v1/documents", json={"text": DOCUMENT, "title": TITLE}, timeout=120)
        assert added.status_code == 201, added.text


def ask_and_wait(page: Page, question: str) -> str:
    """Ask; once the answer is done, its text as the page shows it (citations included)."""
    page.fill("#question", question)
    page.click("#send")
    expect(page.locator("#send")).to_be_disabled()
    expect(page.locator("#send")).to_be_enabled(timeout=120_000)
    turn = page.locator(".turn").last
    return turn.locator(".answer .segment").evaluate_all("parts => parts.map(p => p.textContent).join('')")


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in {"the", "a", "an", "of", "in", "on", "is"}}


def test_a_citation_opens_the_passage_it_cites_with_the_cited_words_marked(base_url) -> None:
    ensure_document(base_url)
    with chat_page(base_url) as page:
        answer = ask_and_wait(page, ASK)
        assert "[1]" in answer, answer
        sentence = re.split(r"(?<=[.!?])\s+", answer[: answer.index("[1]")])[-1]
        cite = page.locator(".turn .answer .segment button.cite").first
        expect(cite).to_have_text("[1]")
        # By keyboard: the marker is a button; Enter opens the passage, Escape closes it.
        cite.focus()
        page.keyboard.press("Enter")
        panel = page.locator("#passage")
        expect(panel).to_be_visible()
        expect(panel.locator("#passage-title")).to_have_text(f"[1] {TITLE}")
        expect(panel.locator("blockquote")).to_have_text(DOCUMENT)
        marks = panel.locator("blockquote mark")
        expect(marks.first).to_be_visible()
        marked = set().union(*(content_words(m) for m in marks.all_text_contents()))
        assert marked & content_words(sentence), (marks.all_text_contents(), sentence)
        assert marked <= content_words(DOCUMENT)
        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        expect(cite).to_be_focused()
        # The closing source list opens the same passage, marked with every sentence citing it.
        page.locator(".turn .sources button.cite").first.click()
        expect(panel.locator("blockquote mark").first).to_be_visible()
        panel.get_by_role("button", name="Close").click()
        expect(panel).to_be_hidden()


def test_conversations_survive_a_reload_reopen_export_and_delete(base_url) -> None:
    ensure_document(base_url)
    with chat_page(base_url) as page:
        answer = ask_and_wait(page, ASK)
        assert "[1]" in answer and "Sources:" not in answer, answer
        listed = page.locator("#conv-list li")
        expect(listed).to_have_count(1)
        expect(listed.locator(".open")).to_have_text(ASK)

        # A reload reopens the conversation the tab had open.
        page.reload()
        expect(page.locator(".turn .user")).to_have_text(ASK)
        expect(page.locator(".turn .answer")).to_have_text(answer)

        # A new conversation empties the page; after a reload the kept one is listed and reopens.
        page.click("#new-conv")
        expect(page.locator(".turn")).to_have_count(0)
        page.reload()
        expect(page.locator(".turn")).to_have_count(0)
        expect(listed).to_have_count(1)
        listed.locator(".open").click()
        expect(page.locator(".turn .user")).to_have_text(ASK)
        expect(page.locator(".turn .answer")).to_have_text(answer)
        expect(page.locator(".turn .sources")).to_contain_text(TITLE)
        page.locator(".turn .answer button.cite").first.click()
        expect(page.locator("#passage blockquote mark").first).to_be_visible()
        page.keyboard.press("Escape")

        # Its messages go with the next question (this one refused, so the model is spared).
        sent: list[dict] = []

        def refuse(route: Route) -> None:
            sent.append(route.request.post_data_json)
            route.fulfill(status=503, json={"error": {"message": "busy", "type": "server_error"}})

        page.route("**/v1/chat/completions", refuse)
        page.fill("#question", "When was it built?")
        page.click("#send")
        expect(page.locator(".turn .answer").nth(1)).to_have_text("Error: busy")
        page.unroute("**/v1/chat/completions")
        assert [(m["role"], m["content"]) for m in sent[0]["messages"]][::2] == [
            ("user", ASK),
            ("user", "When was it built?"),
        ]
        assert sent[0]["messages"][1]["role"] == "assistant" and answer in sent[0]["messages"][1]["content"]
        # The document came as JSON text with a title and no file name: every place names it the
        # same way, by its title, never with an empty "()".
        assert sent[0]["messages"][1]["content"].endswith(f"\n\nSources:\n[1] {TITLE}")
        expect(page.locator(".turn .sources li").first).to_have_text(f"[1] {TITLE}")

        # Exported as Markdown: the question, the answer and its source with the passage.
        with page.expect_download() as download:
            page.click("#export-conv")
        assert download.value.suggested_filename == "who-founded-the-kessaly-observatory.md"
        markdown = Path(download.value.path()).read_text(encoding="utf-8")
        assert markdown.startswith(f"# {ASK}\n")
        assert f"## Question\n\n{ASK}\n" in markdown
        assert f"## Answer\n\n{answer}\n" in markdown
        assert f"- [1] {TITLE}\n" in markdown
        assert f"  > {DOCUMENT}\n" in markdown
        assert "When was it built?" not in markdown  # unanswered, so not kept

        # Deleted, it is gone from the list, the page and the browser.
        page.get_by_role("button", name=f"Delete conversation: {ASK}").click()
        expect(listed).to_have_count(0)
        expect(page.locator(".turn")).to_have_count(0)
        expect(page.locator("#export-conv")).to_be_disabled()
        page.reload()
        expect(listed).to_have_count(0)
        expect(page.locator(".turn")).to_have_count(0)


def test_the_page_picks_collections_to_search_and_one_to_add_to(base_url) -> None:
    made = httpx.post(
        base_url + "/v1/documents",
        params={"collection": "team-b"},
        json={"text": "The Drellish Lighthouse stands on the cape of Ombravik.", "id": "drellish"},
        timeout=60,
    )
    assert made.status_code == 201, made.text
    with chat_page(base_url) as page:
        page.click("#collections-box summary")
        box = page.locator("#collections label")
        expect(box.filter(has_text="team-b (1)")).to_have_count(1)
        expect(box.filter(has_text="default")).to_have_count(1)
        box.filter(has_text="team-b").locator("input").check()

        sent: list[dict] = []

        def refuse(route: Route) -> None:  # the request is what is tested: the model is spared
            sent.append(route.request.post_data_json)
            route.fulfill(status=503, json={"error": {"message": "busy", "type": "server_error"}})

        page.route("**/v1/chat/completions", refuse)
        page.fill("#question", "Where is the Drellish Lighthouse?")
        page.click("#send")
        expect(page.locator(".turn .answer").last).to_have_text("Error: busy")
        assert sent[0]["collections"] == ["team-b"]

        # A document added through the page goes to the collection picked for it.
        page.click("#add-doc summary")
        page.select_option("#doc-collection", "team-b")
        page.fill("#doc-text", "The Corvane bell rings at dawn in Tessaly.")
        page.click("#doc-add")
        expect(page.locator("#doc-status")).to_contain_text("added")
        listed = httpx.get(base_url + "/v1/documents", params={"collection": "team-b"}).json()["data"]
        assert sorted(d["title"] for d in listed) == [
            "The Corvane bell rings at dawn in Tessaly.",
            "The Drellish Lighthouse stands on the cape of Ombravik.",
        ]
        expect(box.filter(has_text="team-b (2)")).to_have_count(1)
