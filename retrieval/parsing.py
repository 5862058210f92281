"""Turn uploaded bytes into a title and plain text: text, Markdown, HTML, PDF, office files,
e-books, CSV, and images and scanned PDFs by OCR.

Formats with headings are converted to Markdown (retrieval/office.py, tables.py, epub.py), so
every document keeps its sections the same way and takes its title from its first heading.
"""

from __future__ import annotations

import io
import re
import zipfile
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
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".epub": "application/epub+zip",
    ".rtf": "application/rtf",
    ".csv": "text/csv",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}
# Other names clients send for the same formats.
_ALIASES = {"text/rtf": "application/rtf", "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
_IMAGES = ("image/png", "image/jpeg")
# Formats converted to Markdown: what each is called, and why one came out empty (the error says
# what was read, so that "no text" is not taken for a failed upload).
_CONVERTED = {
    SUPPORTED[".docx"]: ("Word document", "its paragraphs and tables are empty"),
    SUPPORTED[".pptx"]: ("PowerPoint presentation", "its slides hold no text"),
    SUPPORTED[".xlsx"]: ("Excel workbook", "its sheets hold no values"),
    SUPPORTED[".odt"]: ("OpenDocument text", "its paragraphs and tables are empty"),
    SUPPORTED[".epub"]: ("EPUB book", "its chapters hold no text"),
    SUPPORTED[".rtf"]: ("RTF document", "it holds no text"),
    SUPPORTED[".csv"]: ("CSV file", "it holds no values"),
}
MAX_OCR_PAGES = 200  # a scan beyond this is refused, not read for minutes while other uploads wait
_MAX_UNZIPPED = 512 * 1024 * 1024  # office files and e-books are zip archives: refuse a zip bomb
_NOT_CONTENT = ["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "iframe", "template"]


class UnsupportedDocument(ValueError):
    """The bytes are not a kind of document we can read, or are not readable as that kind."""


class EmptyDocument(UnsupportedDocument):
    """The document was read and holds no text; the message says how it was read, so that a
    scan that OCR could not read is not taken for a broken upload."""


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    title: str
    text: str
    media_type: str


def media_type_for(filename: str | None, declared: str | None = None) -> str:
    if declared:
        base = declared.split(";")[0].strip().lower()
        base = _ALIASES.get(base, base)
        if base in SUPPORTED.values():
            return base
    suffix = Path(filename or "").suffix.lower()
    if suffix in SUPPORTED:
        return SUPPORTED[suffix]
    if declared and declared.split(";")[0].strip().lower() in ("text/x-markdown", "application/xhtml+xml"):
        return "text/markdown" if "markdown" in declared else "text/html"
    kinds = ", ".join(sorted({suffix.lstrip(".") for suffix in SUPPORTED} - {"text", "markdown", "htm", "jpeg"}))
    raise UnsupportedDocument(f"unsupported document type {declared or suffix or 'unknown'}; use {kinds}")


def parse_document(
    data: bytes, filename: str | None = None, media_type: str | None = None, *, ocr: bool = True
) -> ParsedDocument:
    """`ocr=False` reads only text layers (a fetched web page must not cost seconds of OCR)."""
    kind = media_type_for(filename, media_type)
    stem = Path(filename).stem if filename else ""
    name = filename or "the document"
    if kind == "application/pdf":
        return _pdf(data, stem, name, ocr=ocr)
    if kind in _IMAGES:
        if not ocr:
            raise UnsupportedDocument(f"{name} is an image; images are read by OCR only when uploaded")
        return _image(data, stem, name, kind)
    if kind in _CONVERTED:
        return _converted(data, stem, name, kind)
    text = _decode(data)
    if kind == "text/html":
        return _html(text, stem)
    if kind == "text/markdown":
        return _markdown(text, stem, kind)
    tidy = _tidy(text)
    return ParsedDocument(title_from_text(tidy, stem), tidy, kind)


def _markdown(text: str, stem: str, kind: str, fallback_title: str = "") -> ParsedDocument:
    """The first heading is the title; then the file's own title, then one read from the text."""
    heading = re.search(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", text, re.MULTILINE)
    tidy = _tidy(text)
    return ParsedDocument(heading.group(1) if heading else fallback_title or title_from_text(tidy, stem), tidy, kind)


def _converted(data: bytes, stem: str, name: str, kind: str) -> ParsedDocument:
    """An office file, e-book or CSV as Markdown; any failure of its library means unreadable."""
    try:
        text, title = _to_markdown(data, stem, name, kind)
    except UnsupportedDocument:
        raise
    except Exception as exc:  # each library fails its own way (BadZipFile, KeyError, XML errors, …)
        why = f"{type(exc).__name__}: {exc}"
        raise UnsupportedDocument(f"{name} is not a readable {_CONVERTED[kind][0]} ({why})") from exc
    if not text.strip():
        raise EmptyDocument(f"{name} has no text: {_CONVERTED[kind][1]}")
    return _markdown(text, stem, kind, title)


def _to_markdown(data: bytes, stem: str, name: str, kind: str) -> tuple[str, str]:
    """(Markdown, the title the file's metadata gives or "")."""
    from retrieval import epub, office, tables

    if kind == SUPPORTED[".csv"]:
        return tables.csv_markdown(_decode(data), stem), ""
    if kind == SUPPORTED[".rtf"]:
        if not data.lstrip().startswith(b"{\\rtf"):
            raise UnsupportedDocument(f"{name} is not an RTF document: it does not start with {{\\rtf")
        return office.rtf_text(data), ""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if sum(info.file_size for info in archive.infolist()) > _MAX_UNZIPPED:
            raise UnsupportedDocument(f"{name} unpacks to more than {_MAX_UNZIPPED // 2**20} MiB")
    if kind == SUPPORTED[".xlsx"]:
        return tables.xlsx_markdown(data, stem), ""
    read = {
        SUPPORTED[".docx"]: office.docx_markdown,
        SUPPORTED[".pptx"]: office.pptx_markdown,
        SUPPORTED[".odt"]: office.odt_markdown,
        SUPPORTED[".epub"]: epub.epub_markdown,
    }[kind]
    return read(data)


def _image(data: bytes, stem: str, name: str, kind: str) -> ParsedDocument:
    from retrieval import ocr

    try:
        image = ocr.open_image(data)
    except Exception as exc:  # Pillow: not an image, truncated, or a decompression bomb
        raise UnsupportedDocument(f"{name} is not a readable image ({type(exc).__name__}: {exc})") from exc
    text = _tidy(ocr.image_text(image))
    if not text:
        raise EmptyDocument(f"{name} has no text: it is an image, read by OCR ({ocr.ENGINE}), and OCR found no text")
    return ParsedDocument(title_from_text(text, stem), text, kind)


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


def _pdf(data: bytes, fallback_title: str, name: str = "the document", ocr: bool = True) -> ParsedDocument:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except Exception as exc:  # pypdf fails in many ways (NotImplementedError for an unknown filter, …)
        raise UnsupportedDocument(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    scanned = [n for n, page in enumerate(pages) if _scanned(page)]
    if scanned and ocr:
        if len(scanned) > MAX_OCR_PAGES:
            raise UnsupportedDocument(
                f"{name} has {len(scanned)} scanned pages; at most {MAX_OCR_PAGES} are read by OCR "
                "(about 2 s a page here): split it"
            )
        pages = _ocr_pages(data, pages, scanned, name)
    text = _tidy("\n\n".join(pages))
    if not text and not ocr:
        raise EmptyDocument(f"{name} has no text layer: scans are read by OCR only when uploaded")
    return ParsedDocument(
        str(title).strip() if title and str(title).strip() else title_from_text(text, fallback_title),
        text,
        "application/pdf",
    )


def _scanned(page_text: str) -> bool:
    """A page with (almost) no text layer: a scan, or a page number stamped on one."""
    return sum(ch.isalnum() for ch in page_text) < 10


def _ocr_pages(data: bytes, pages: list[str], scanned: list[int], name: str) -> list[str]:
    """The pages with the OCR text of their images where they have no text of their own."""
    from retrieval import ocr

    try:
        found = ocr.scanned_pages_text(data, scanned)
    except Exception as exc:  # pdfium can fail on a file pypdf read
        raise UnsupportedDocument(f"{name}: its pages without text could not be rendered for OCR ({exc})") from exc
    pages = [found.get(n) or page for n, page in enumerate(pages)]
    if found and not any(page.strip() for page in pages):
        raise EmptyDocument(
            f"{name} has no text: it has no text layer, OCR ({ocr.ENGINE}) read the images on "
            f"{len(found)} of its {len(pages)} pages and found no text"
        )
    if not any(page.strip() for page in pages):
        raise EmptyDocument(f"{name} has no text: its pages have no text layer and no images to read by OCR")
    return pages
