"""Turn uploaded bytes (text, Markdown, HTML, PDF) into a title and plain text."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

SUPPORTED = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
_NOT_CONTENT = ["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "iframe", "template"]


class UnsupportedDocument(ValueError):
    """The bytes are not a kind of document we can read, or are not readable as that kind."""


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    title: str
    text: str
    media_type: str


def media_type_for(filename: str | None, declared: str | None = None) -> str:
    if declared:
        base = declared.split(";")[0].strip().lower()
        if base in SUPPORTED.values():
            return base
    suffix = Path(filename or "").suffix.lower()
    if suffix in SUPPORTED:
        return SUPPORTED[suffix]
    if declared and declared.split(";")[0].strip().lower() in ("text/x-markdown", "application/xhtml+xml"):
        return "text/markdown" if "markdown" in declared else "text/html"
    raise UnsupportedDocument(f"unsupported document type {declared or suffix or 'unknown'}; use txt, md, html or pdf")


def parse_document(data: bytes, filename: str | None = None, media_type: str | None = None) -> ParsedDocument:
    kind = media_type_for(filename, media_type)
    stem = Path(filename).stem if filename else ""
    if kind == "application/pdf":
        return _pdf(data, stem)
    text = _decode(data)
    if kind == "text/html":
        return _html(text, stem)
    if kind == "text/markdown":
        heading = re.search(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", text, re.MULTILINE)
        tidy = _tidy(text)
        return ParsedDocument(heading.group(1) if heading else title_from_text(tidy, stem), tidy, kind)
    tidy = _tidy(text)
    return ParsedDocument(title_from_text(tidy, stem), tidy, kind)


def title_from_text(text: str, file_stem: str = "") -> str:
    """A document's title when its format carries none: a first line that reads as a heading,
    else a file name that reads as words, else the first sentence's start.

    The title is part of every chunk's meaning (the reader embeds sentences with it, answers
    cite it): a file named "d03" whose first line says "Harrowgate Footbridge" must be stored
    as the footbridge, not as d03.
    """
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if _reads_as_heading(first):
        return first.strip("#* ").strip()
    if _reads_as_words(file_stem):
        return file_stem
    sentence = re.split(r"(?<=[.!?])\s", first, maxsplit=1)[0]
    return sentence if len(sentence) <= 80 else sentence[:80].rsplit(" ", 1)[0] + " …"


def _reads_as_heading(line: str) -> bool:
    """Short, and not a sentence: no closing punctuation, a few words, a capital to start."""
    words = line.split()
    return (
        0 < len(words) <= 12
        and len(line) <= 100
        and line[-1] not in ".,;:!?"
        and any(ch.isalpha() for ch in line)
        and (line[0].isupper() or line[0].isdigit() or line[0] in "#*")
    )


def _reads_as_words(stem: str) -> bool:
    """A file name made of words ("harbour-notes"), not an identifier ("d03", "scan_0001")."""
    words = [w for w in re.split(r"[\W_]+", stem) if w]
    letters = sum(ch.isalpha() for ch in stem)
    digits = sum(ch.isdigit() for ch in stem)
    return letters >= 2 * digits and any(
        len(w) >= 4 and w.isalpha() and re.search(r"[aeiouy]", w.lower()) for w in words
    )


def _decode(data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise UnsupportedDocument("binary data is not a text document")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _html(markup: str, fallback_title: str) -> ParsedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_NOT_CONTENT):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    heading = root.find("h1")
    blocks = []
    for element in root.find_all(["h1", "h2", "h3", "h4", "p", "li", "pre", "blockquote", "td"]):
        if element.find(["p", "li", "pre", "blockquote", "td"]):
            continue  # its children come on their own
        text = element.get_text(" ", strip=True)
        if text:
            blocks.append(text)
    body = "\n\n".join(blocks) if blocks else root.get_text("\n", strip=True)
    body = _tidy(body)
    return ParsedDocument(
        title or (heading.get_text(" ", strip=True) if heading else title_from_text(body, fallback_title)),
        body,
        "text/html",
    )


def _pdf(data: bytes, fallback_title: str) -> ParsedDocument:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except Exception as exc:  # pypdf fails in many ways (NotImplementedError for an unknown filter, …)
        raise UnsupportedDocument(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    text = _tidy("\n\n".join(pages))
    return ParsedDocument(
        str(title).strip() if title and str(title).strip() else title_from_text(text, fallback_title),
        text,
        "application/pdf",
    )
