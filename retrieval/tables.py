"""Tables as text: one Markdown list item per row, each value named by its column.

A row reads "- Species: glass eel; Count: 412; River: Narth". Every row carries its column
names, so a chunk cut from the middle of a long table still says what each value means (a
Markdown pipe table loses its header row at the first chunk boundary, and its pipes and
dashes are noise to the embedder). The chunker ends a sentence before a list item, so chunks
are cut between rows, not inside one (unless a row is longer than a chunk or holds sentences).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator, Sequence

Cell = str | int | float | bool | dt.datetime | dt.date | dt.time | None


def cell_text(value: Cell) -> str:
    """A cell as a reader would write it: 3 not 3.0, a date without a midnight time."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return re.sub(r"\s+", " ", str(value)).strip()


def table_lines(rows: Iterable[Sequence[Cell]]) -> Iterator[str]:
    """Each non-empty row as a list item; the first row names the columns when it reads as a header."""
    header: list[str] | None = None
    seen_row = False
    for raw in rows:
        cells = [cell_text(v) for v in raw]
        if not any(cells):
            continue
        if header is None and not seen_row and _reads_as_header(cells):
            header = cells
            continue
        if header is not None and cells[: len(header)] == header:
            continue  # the header repeated (a table split across pages)
        seen_row = True
        yield "- " + "; ".join(_named(cells, header or []))
    if header is not None and not seen_row:
        yield "- " + "; ".join(c for c in header if c)  # a lone row of labels is still text


def _named(cells: list[str], header: list[str]) -> Iterator[str]:
    for n, value in enumerate(cells):
        name = header[n] if n < len(header) else ""
        if value:
            yield f"{name}: {value}" if name and name != value else value


def _reads_as_header(cells: list[str]) -> bool:
    """Two or more short labels, none a number: "Name | Count", not "Eel | 412"."""
    named = [c for c in cells if c]
    return len(named) >= 2 and len(set(named)) == len(named) and all(len(c) <= 60 and not _is_number(c) for c in named)


def _is_number(text: str) -> bool:
    return re.fullmatch(r"[-+]?[\d.,\s%€$£]+", text) is not None and any(ch.isdigit() for ch in text)


def csv_markdown(text: str, title: str) -> str:
    """A CSV file under a heading named after the file (a CSV has no title of its own)."""
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    lines = list(table_lines(csv.reader(io.StringIO(text), dialect)))
    heading = [f"# {title}", ""] if title and lines else []
    return "\n".join(heading + lines)


def xlsx_markdown(data: bytes, title: str) -> str:
    """A workbook under a heading named after it, each sheet a "##" section of rows.

    Read-only mode streams rows instead of building every cell; data_only reads the values
    Excel last computed for formulas, not the formulas.
    """
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        title = (book.properties.title or "").strip() or title
        parts = [f"# {title}"] if title else []
        for sheet in book.worksheets:
            lines = list(table_lines(sheet.iter_rows(values_only=True)))
            if lines:
                parts += [f"## {sheet.title}", "\n".join(lines)]
    finally:
        book.close()
    return "\n\n".join(parts) if len(parts) > bool(title) else ""
