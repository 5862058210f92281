"""A web page read as a document to index: fetched through `PageFetcher`'s guard, its main text
and title taken by trafilatura, so that menus, footers and ads are not indexed as the page.

A page that trafilatura finds nothing in is read by the HTML reader of uploads; a PDF or a
text file at a URL is read as an upload of its type (never by OCR: a URL must not cost minutes).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from retrieval.page_fetch import PageFetcher
from retrieval.parsing import ParsedDocument, media_type_for, parse_document

_HINT = "; an administrator may allow its network in RAGPAUSE_WEB_FETCH_ALLOWED_NETWORKS"


def is_web_url(value: str) -> bool:
    """An http(s) URL with a host: what can be fetched (and refreshed)."""
    parts = urlsplit(value.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def fetch_document(fetcher: PageFetcher, url: str) -> ParsedDocument:
    """The page at `url` read as a document; ValueError says why not (the guard's refusal, a
    time or size limit, an HTTP error, a type that cannot be read, no text). Blocking: it runs
    in the ingestion thread, never on the service's event loop."""
    got = asyncio.run(fetcher.download(url))
    if got.error is not None:
        hint = _HINT if "non-public address" in got.error else ""
        raise ValueError(got.error + hint)
    if got.truncated:
        # Part of a page is not the page: indexed, its refresh would compare halves.
        raise ValueError(f"too large: the page passes the limit of {fetcher.max_bytes} bytes")
    parsed = read_page(got.body, got.url, got.media_type)
    if not parsed.text.strip():
        raise ValueError("the page has no text")
    return parsed


def read_page(body: bytes, url: str, media_type: str) -> ParsedDocument:
    """A fetched page's title and text: HTML by trafilatura (the HTML reader when it finds
    nothing), other types as uploads of that type; UnsupportedDocument (a ValueError) else."""
    name = urlsplit(url).path.rsplit("/", 1)[-1] or "page.html"
    kind = media_type_for(name, media_type)
    if kind == "text/html":
        found = main_text(body, url)
        if found is not None:
            return found
    return parse_document(body, name, kind, ocr=False)


def main_text(html: bytes, url: str) -> ParsedDocument | None:
    """The article of a page as Markdown (headings, lists and tables kept) with its title, or
    None when trafilatura finds no main text."""
    import trafilatura  # imported when a URL is read, not with every service start

    found = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,  # the title: the page's own, without the site's name
        include_comments=False,
        include_tables=True,
        include_formatting=True,  # Markdown, as other documents are stored
    )
    text = getattr(found, "text", None) or ""
    if not text.strip():
        return None
    # Read as any Markdown upload: the same tidying, and its first heading when there is no title.
    markdown = parse_document(text.encode("utf-8"), None, "text/markdown")
    return ParsedDocument(found.title or markdown.title, markdown.text, "text/html")
