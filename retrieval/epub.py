"""EPUB books as Markdown text: the chapters in reading (spine) order, h1-h6 as headings."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from retrieval.tables import table_lines

_BLOCKS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "dt", "dd", "table"]
_LEAF_BLOCKS = ["p", "li", "pre", "blockquote", "table"]


def epub_markdown(data: bytes) -> tuple[str, str]:
    """(markdown, the book's dc:title or ""). The book's title, which an EPUB must have, heads the
    text: the first chapter's heading ("Chapter 1") would be a poor title for the whole book."""
    import ebooklib
    from ebooklib import epub

    book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": True})
    chapters = []
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        # The navigation document only repeats the chapter titles.
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue
        chapters.append(xhtml_markdown(item.get_content()))
    titles = book.get_metadata("DC", "title")
    title = str(titles[0][0]).strip() if titles else ""
    text = "\n\n".join(c for c in chapters if c)
    if title and text and not text.startswith(f"# {title}\n"):
        text = f"# {title}\n\n{text}"
    return text, title


def xhtml_markdown(markup: bytes) -> str:
    """One chapter's blocks in order; a block holding other blocks is read through them."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "lxml")
    for tag in soup(["script", "style", "nav"]):
        tag.decompose()
    root = soup.body or soup
    blocks = [block for element in root.find_all(_BLOCKS) for block in _block(element)]
    return "\n\n".join(blocks) if blocks else root.get_text("\n", strip=True)


def _block(element: Any) -> Iterator[str]:
    if element.find_parent("table") is not None:
        return  # read with its table
    name = element.name
    if name == "table":
        rows = ([c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])] for tr in element.find_all("tr"))
        yield "\n".join(table_lines(rows))
        return
    if element.find(_LEAF_BLOCKS) is not None:
        return  # its children come on their own
    text = element.get_text(" ", strip=True)
    if not text:
        return
    if name[0] == "h" and name[1:].isdigit():
        yield "#" * int(name[1]) + " " + text
    elif name == "li":
        yield "- " + text
    else:
        yield text
