"""Reading documents of each kind, and cutting them into sentence-aware chunks."""

from __future__ import annotations

import pytest

from retrieval.chunking import chunk_text, sentence_spans
from retrieval.parsing import UnsupportedDocument, parse_document
from tests.sample_files import tiny_pdf


def test_plain_text_and_markdown() -> None:
    doc = parse_document(b"Salt ledger\r\n\r\nThe   ledger lists salt.", "ledger.txt")
    assert doc.media_type == "text/plain" and doc.text == "Salt ledger\n\nThe ledger lists salt."
    md = parse_document(b"Intro line\n\n## Tidal Station\n\nIt counts eels.", "notes.md")
    assert md.title == "Tidal Station" and "It counts eels." in md.text


@pytest.mark.parametrize(
    "text, name, title",
    [
        # A first line that reads as a heading is the title, whatever the file is called.
        ("Harrowgate Footbridge\n\nIt was designed by engineer Ola Brenn.", "d03.txt", "Harrowgate Footbridge"),
        ("# Moss tea\nIt is brewed cold.", "x1.txt", "Moss tea"),
        # A first line that is a sentence: a file name made of words, else the sentence's start.
        ("The harbour opened in 1862. It has two piers.", "harbour-history.txt", "harbour-history"),
        ("The harbour opened in 1862. It has two piers.", "d03.txt", "The harbour opened in 1862."),
        ("Intro paragraph, no heading here.\n\nMore text.", "scan_0001.md", "Intro paragraph, no heading here."),
    ],
)
def test_a_file_without_a_title_is_named_by_its_text(text: str, name: str, title: str) -> None:
    assert parse_document(text.encode(), name).title == title


def test_a_pdf_without_a_title_is_named_by_its_first_line() -> None:
    doc = parse_document(tiny_pdf(["Drovik Accord", "It was signed in 1873."], title=""), "p7.pdf")
    assert doc.title == "Drovik Accord"


def test_html_keeps_the_main_text_only() -> None:
    html = b"""<html><head><title>Velnorian harp</title><style>p{color:red}</style></head>
    <body><nav><a href="/">Home</a> | <a href="/shop">Shop</a></nav>
    <main><h1>The harp</h1><p>It has <b>31</b> strings.</p><ul><li>Linen strings</li></ul></main>
    <script>track("visit")</script><footer>Copyright 2026</footer></body></html>"""
    doc = parse_document(html, "harp.html")
    assert doc.title == "Velnorian harp"
    assert "It has 31 strings." in doc.text and "Linen strings" in doc.text
    for noise in ["Home", "Shop", "track(", "Copyright", "color:red"]:
        assert noise not in doc.text


def test_pdf_text_and_title() -> None:
    doc = parse_document(
        tiny_pdf(["The Drovik Accord was signed in 1873.", "It fixed the price of salt."]), "accord.pdf"
    )
    assert doc.media_type == "application/pdf" and doc.title == "Harbour notes"
    assert "signed in 1873" in doc.text and "price of salt" in doc.text


@pytest.mark.parametrize(
    "data, name, media",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image.png", None),
        (b"plain words", "archive.zip", None),
        (b"%PDF-1.4 this is not really a pdf", "broken.pdf", None),
        (b"\x00\x01\x02binary", "data.txt", None),
    ],
)
def test_unreadable_documents_are_refused(data: bytes, name: str, media: str | None) -> None:
    with pytest.raises(UnsupportedDocument):
        parse_document(data, name, media)


def test_sentences_and_offsets() -> None:
    text = 'Dr. Quintaro counts eels. "Why?" she asked!\n\n- first item\n- second item\nDone.'
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans][:2] == ["Dr. Quintaro counts eels.", '"Why?" she asked!']


def test_chunks_respect_sentences_budget_and_overlap() -> None:
    sentences = [f"Sentence number {i} talks about the harbour of Vellmora and its eels." for i in range(60)]
    text = " ".join(sentences)
    chunks = chunk_text(text, target_words=60, max_words=80, overlap_sentences=1)
    assert len(chunks) > 5
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text.startswith("Sentence number") and chunk.text.endswith("eels.")
        assert len(chunk.text.split()) <= 80
    for a, b in zip(chunks, chunks[1:]):
        last_sentence = a.text[a.text.rfind("Sentence number") :]
        assert b.text.startswith(last_sentence)  # one shared sentence
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_a_run_on_sentence_is_split_by_words() -> None:
    text = " ".join(["word"] * 500)
    chunks = chunk_text(text, target_words=150, max_words=200)
    assert all(len(c.text.split()) <= 200 for c in chunks) and len(chunks) >= 3
