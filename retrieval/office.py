"""Word, PowerPoint, OpenDocument and RTF files as Markdown text.

Headings become Markdown heading lines, so a converted file reads like an uploaded Markdown
file: its first heading is its title and its sections stay visible to the reader. Each
function returns (markdown, title from the file's metadata or "").
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

from retrieval.tables import table_lines

_HEADING_STYLE = re.compile(r"heading (\d)", re.IGNORECASE)


def docx_markdown(data: bytes) -> tuple[str, str]:
    """Paragraphs and tables in document order; Title and Heading 1-9 styles as headings."""
    from docx import Document
    from docx.table import Table

    document = Document(io.BytesIO(data))
    blocks = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = [_unmerged(row.cells) for row in item.rows]
            blocks.append("\n".join(table_lines([c.text for c in cells] for cells in rows)))
            continue
        text = item.text.strip()
        if text:
            blocks.append(_word_paragraph(text, item.style))
    return "\n\n".join(b for b in blocks if b), (document.core_properties.title or "").strip()


def _word_paragraph(text: str, style: Any) -> str:
    """A heading's level from its style, or from the built-in heading style it is based on."""
    for _ in range(16):  # a style is based on a few others at most; a loop in a broken file ends here
        if style is None:
            break
        name = style.name or ""
        if name == "Title":
            return f"# {text}"
        level = _HEADING_STYLE.fullmatch(name)
        if level:
            return "#" * min(int(level.group(1)), 6) + f" {text}"
        if name.startswith("List"):
            return f"- {text}"
        style = style.base_style
    return text


def _unmerged(cells: tuple[Any, ...]) -> list[Any]:
    """A cell spanning columns comes once per spanned column, as the same object: keep one."""
    return [cell for n, cell in enumerate(cells) if n == 0 or cell is not cells[n - 1]]


def pptx_markdown(data: bytes) -> tuple[str, str]:
    """Each slide's title as a heading, then its text boxes and tables top to bottom, then its notes."""
    from pptx import Presentation

    deck = Presentation(io.BytesIO(data))
    blocks = []
    for slide in deck.slides:
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None else ""
        if title:
            blocks.append(f"# {title}")
        blocks += _shape_blocks([s for s in slide.shapes if title_shape is None or s.shape_id != title_shape.shape_id])
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            blocks.append(slide.notes_slide.notes_text_frame.text.strip())
    return "\n\n".join(b for b in blocks if b), (deck.core_properties.title or "").strip()


def _shape_blocks(shapes: list[Any]) -> Iterator[str]:
    """Shapes in reading order (top, then left); groups are read inside."""
    for shape in sorted(shapes, key=lambda s: (s.top or 0, s.left or 0)):
        if hasattr(shape, "shapes"):  # a group
            yield from _shape_blocks(list(shape.shapes))
        elif getattr(shape, "has_table", False):
            yield "\n".join(table_lines([cell.text for cell in row.cells] for row in shape.table.rows))
        elif shape.has_text_frame:
            yield from (p.text.strip() for p in shape.text_frame.paragraphs)


def odt_markdown(data: bytes) -> tuple[str, str]:
    """OpenDocument text: text:h outline levels and the Title style as headings, lists, tables."""
    from odf.opendocument import load

    document = load(io.BytesIO(data))
    parents = {
        style.getAttribute("name"): style.getAttribute("parentstylename")
        for style in document.automaticstyles.childNodes
        if style.qname[1] == "style"
    }
    blocks = list(_odf_blocks(document.text, parents, ""))
    title = ""
    for node in document.meta.childNodes:
        if node.qname[1] == "title":
            title = str(node).strip()
    return "\n\n".join(b for b in blocks if b), title


_ODF_SKIPPED = {"table-of-content", "sequence-decls", "tracked-changes", "forms", "variable-decls", "index-title"}


def _odf_blocks(element: Any, parents: dict[str, str], prefix: str) -> Iterator[str]:
    from odf import teletype

    for node in element.childNodes:
        if node.nodeType != node.ELEMENT_NODE:
            continue
        kind = node.qname[1]
        if kind == "h":
            text = teletype.extractText(node).strip()
            if text:
                yield "#" * min(int(node.getAttribute("outlinelevel") or 1), 6) + " " + text
        elif kind == "p":
            text = teletype.extractText(node).strip()
            style = node.getAttribute("stylename") or ""
            if text and "Title" in (style, parents.get(style)):
                yield f"# {text}"
            elif text:
                yield prefix + text
        elif kind == "list-item":
            yield from _odf_blocks(node, parents, "- ")
        elif kind == "table":
            yield "\n".join(table_lines(_odf_rows(node)))
        elif kind not in _ODF_SKIPPED:
            yield from _odf_blocks(node, parents, prefix)  # sections, lists, frames: read inside


def _odf_rows(element: Any) -> Iterator[list[str]]:
    """The table's own rows (a nested table is read as its cell's text)."""
    from odf import teletype

    for row in element.childNodes:
        kind = row.qname[1] if row.nodeType == row.ELEMENT_NODE else ""
        if kind in ("table-header-rows", "table-rows", "table-row-group"):
            yield from _odf_rows(row)
        elif kind == "table-row":
            cells = []
            for cell in row.childNodes:
                if cell.qname[1] != "table-cell":
                    continue  # covered-table-cell: part of a merged cell already read
                text = " ".join(teletype.extractText(block) for block in cell.childNodes)
                repeat = int(cell.getAttribute("numbercolumnsrepeated") or 1)
                cells += [text] * (min(repeat, 64) if text.strip() else 1)
            yield cells


def rtf_text(data: bytes) -> str:
    """RTF carries no heading markup that survives conversion: it is read as plain text."""
    from striprtf.striprtf import rtf_to_text

    return rtf_to_text(data.decode("latin-1"), errors="replace")
