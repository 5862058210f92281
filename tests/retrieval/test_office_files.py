"""Office files, e-books, CSV, images and scans: real files written by each format's own library,
read back with their headings as Markdown structure, their tables as rows, and their media types."""

from __future__ import annotations

import io

import pytest

from retrieval.document_index import DocumentIndex, read_document
from retrieval.parsing import SUPPORTED, UnsupportedDocument, media_type_for, parse_document
from tests.sample_files import (
    docx_file,
    epub_file,
    image_only_pdf,
    odt_file,
    png_file,
    pptx_file,
    sideways_jpeg,
    text_image,
    xlsx_file,
)

SECTIONS = [
    ("Construction", "The footbridge was designed by engineer Ola Brenn and opened to walkers in 1911."),
    ("Repairs", "Its oak deck was replaced in 1987 after the winter floods."),
]
PARTS = [["Part", "Material", "Length"], ["Deck", "oak", "42 m"], ["Cables", "steel", "44 m"]]


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_docx_keeps_headings_and_reads_tables_as_rows() -> None:
    doc = parse_document(docx_file("Harrowgate Footbridge", SECTIONS, PARTS), "d03.docx")
    assert doc.media_type == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert doc.title == "Harrowgate Footbridge"
    assert lines(doc.text)[0] == "# Harrowgate Footbridge"
    assert "# Construction" in lines(doc.text) and "# Repairs" in lines(doc.text)
    assert "designed by engineer Ola Brenn" in doc.text
    assert "- Part: Deck; Material: oak; Length: 42 m" in lines(doc.text)
    assert "- Part: Cables; Material: steel; Length: 44 m" in lines(doc.text)
    assert doc.text.index("# Repairs") < doc.text.index("- Part: Deck")  # document order


def test_pptx_slide_titles_are_headings() -> None:
    deck = pptx_file(
        [("Harrowgate Footbridge", ["Designed by Ola Brenn", "Opened in 1911"]), ("Repairs", ["Oak deck replaced"])]
    )
    doc = parse_document(deck, "slides.pptx")
    assert doc.media_type == "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    assert doc.title == "Harrowgate Footbridge"
    assert "# Repairs" in lines(doc.text)
    for bullet in ("Designed by Ola Brenn", "Opened in 1911", "Oak deck replaced"):
        assert bullet in lines(doc.text)


def test_xlsx_sheets_are_sections_of_named_values() -> None:
    book = xlsx_file(
        {
            "Tides": [["Date", "High water", "Height (m)"], ["2026-01-02", "06:14", 4.5], ["2026-01-03", "07:02", 4.0]],
            "Notes": [["The gauge moved to pier 2 in March."]],
        }
    )
    doc = parse_document(book, "narth-tides.xlsx")
    assert doc.media_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert doc.title == "narth-tides" and lines(doc.text)[0] == "# narth-tides"
    assert "## Tides" in lines(doc.text) and "## Notes" in lines(doc.text)
    assert "- Date: 2026-01-03; High water: 07:02; Height (m): 4" in lines(doc.text)  # 4.0 reads as 4
    assert "- The gauge moved to pier 2 in March." in lines(doc.text)


def test_odt_outline_levels_are_heading_levels() -> None:
    doc = parse_document(odt_file("Harrowgate Footbridge", SECTIONS, PARTS), "bridge.odt")
    assert doc.media_type == "application/vnd.oasis.opendocument.text"
    assert doc.title == "Harrowgate Footbridge"
    assert "# Harrowgate Footbridge" in lines(doc.text) and "## Construction" in lines(doc.text)
    assert "opened to walkers in 1911" in doc.text
    assert "- Part: Cables; Material: steel; Length: 44 m" in lines(doc.text)


def test_epub_chapters_in_order_under_the_book_title() -> None:
    doc = parse_document(epub_file("The Narth Estuary", SECTIONS), "book.epub")
    assert doc.media_type == "application/epub+zip"
    assert doc.title == "The Narth Estuary"
    assert lines(doc.text)[0] == "# The Narth Estuary"
    assert lines(doc.text).count("# Construction") == 1  # the navigation page is not read as a chapter
    assert doc.text.index("# Construction") < doc.text.index("# Repairs")
    assert "replaced in 1987 after the winter floods" in doc.text


def test_rtf_as_plain_text() -> None:
    rtf = rb"{\rtf1\ansi{\fonttbl\f0 Helvetica;}\f0\pard{\b Harrowgate Footbridge}\par Caf\'e9 on the north bank.\par}"
    doc = parse_document(rtf, "x1.rtf")
    assert doc.media_type == "application/rtf"
    assert doc.title == "Harrowgate Footbridge" and "Café on the north bank." in doc.text
    with pytest.raises(UnsupportedDocument, match="RTF"):
        parse_document(b"not rtf at all", "x1.rtf")


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_rows_under_a_heading_named_after_the_file(delimiter: str) -> None:
    rows = [["species", "count", "river"], ["glass eel", "412", "Narth"], ["lamprey", "17", "Vell"]]
    data = "\n".join(delimiter.join(row) for row in rows).encode()
    doc = parse_document(data, "eel-survey.csv")
    assert doc.media_type == "text/csv" and doc.title == "eel-survey"
    assert lines(doc.text) == [
        "# eel-survey",
        "",
        "- species: glass eel; count: 412; river: Narth",
        "- species: lamprey; count: 17; river: Vell",
    ]


def test_every_suffix_has_its_own_media_type() -> None:
    assert media_type_for("a.DOCX") == SUPPORTED[".docx"]
    assert media_type_for("scan.jpg") == media_type_for("scan.jpeg") == "image/jpeg"
    assert media_type_for("notes", "text/rtf") == "application/rtf"  # another name clients send
    assert media_type_for("table.csv", "application/octet-stream") == "text/csv"
    with pytest.raises(UnsupportedDocument, match="docx"):
        media_type_for("archive.zip")


def test_a_broken_office_file_is_refused_as_unreadable() -> None:
    with pytest.raises(UnsupportedDocument, match="not a readable Word document"):
        parse_document(b"PK\x03\x04 not really a zip", "report.docx")
    with pytest.raises(UnsupportedDocument, match="not a readable PowerPoint"):
        parse_document(docx_file("A Word file", SECTIONS), "renamed.pptx")


def test_an_empty_docx_is_refused_with_why() -> None:
    with pytest.raises(ValueError, match=r"empty\.docx has no text: its paragraphs and tables are empty"):
        read_document(docx_file("", []), "empty.docx")


# OCR: images and scanned PDFs, read offline by RapidOCR (its models ship in its wheel).

SCAN = [
    "Harrowgate Footbridge",
    "",
    "The footbridge was designed by engineer Ola Brenn",
    "and opened to walkers in the spring of 1911.",
    "Its oak deck spans 42 metres over the Narth estuary.",
]


def words(text: str) -> list[str]:
    return [w.strip(".,").lower() for w in text.split()]


def read_well(found: str, truth: list[str]) -> bool:
    """OCR read at least 95% of the true words, in order (its kernels differ from CPU to CPU,
    so a test never hangs on the last word of a clean scan; here it reads all 26)."""
    import difflib

    expected = words(" ".join(truth))
    matched = difflib.SequenceMatcher(a=expected, b=words(found), autojunk=False).get_matching_blocks()
    return sum(block.size for block in matched) >= 0.95 * len(expected)


def test_a_png_is_read_by_ocr() -> None:
    doc = parse_document(png_file(text_image(SCAN, size=(1400, 600))), "IMG_0042.png")
    assert doc.media_type == "image/png"
    assert doc.title == "Harrowgate Footbridge"
    assert read_well(doc.text, SCAN)


def test_a_sideways_phone_photo_is_turned_upright_first() -> None:
    doc = parse_document(sideways_jpeg(text_image(SCAN, size=(1400, 600))), "photo.jpg")
    assert doc.media_type == "image/jpeg"
    assert read_well(doc.text, SCAN)


def test_a_scanned_pdf_is_read_by_ocr() -> None:
    from pypdf import PdfReader

    pdf = image_only_pdf(text_image(SCAN))
    assert not PdfReader(io.BytesIO(pdf)).pages[0].extract_text().strip()  # no text layer: only an image
    doc = parse_document(pdf, "scan_0001.pdf")
    assert doc.media_type == "application/pdf" and doc.title == "Harrowgate Footbridge"
    assert read_well(doc.text, SCAN)
    assert lines(doc.text)[:2] == ["Harrowgate Footbridge", ""]  # the gap under the heading is a paragraph break


def test_upright_lines_are_not_read_upside_down() -> None:
    """Lines of short words that the engine's 180-degree line classifier turned over (and read as
    "Lsoers y suey suey ..."): with it on, a third of these words came out wrong."""
    survey = [
        "Lock eel measured survey salt deck walker walker survey eel survey.",
        "Deck replaced bridge engineer opened deck ledger survey estuary winter elm.",
        "Replaced south measured keeper keeper engineer gauge count elm survey replaced.",
        "River winter gauge bridge gauge opened deck flood flood opened winter.",
        "Harbour replaced river elm river oak engineer count gauge canal replaced.",
    ]
    doc = parse_document(png_file(text_image(survey, size=(1700, 700))), "survey.png")
    assert lines(doc.text) == survey


def test_a_blank_image_is_refused_saying_ocr_found_nothing() -> None:
    blank = text_image([], size=(800, 600))
    with pytest.raises(ValueError, match=r"blank\.png has no text: it is an image, read by OCR .* found no text"):
        read_document(png_file(blank), "blank.png")
    with pytest.raises(ValueError, match=r"blank\.pdf has no text: it has no text layer, OCR .* found no text"):
        read_document(image_only_pdf(blank), "blank.pdf")


def test_a_fetched_web_page_is_never_read_by_ocr() -> None:
    with pytest.raises(UnsupportedDocument, match="only when uploaded"):
        parse_document(png_file(text_image(SCAN, size=(1400, 600))), "chart.png", ocr=False)
    pdf = image_only_pdf(text_image(SCAN))
    with pytest.raises(UnsupportedDocument, match="no text"):
        parse_document(pdf, "scan.pdf", ocr=False)


def test_a_broken_image_is_refused_as_unreadable() -> None:
    with pytest.raises(UnsupportedDocument, match="not a readable image"):
        parse_document(b"\xff\xd8\xff\xe0 truncated jpeg", "photo.jpg")


def test_a_docx_folder_is_indexed_and_found_by_its_content(tmp_path, embedder) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "footbridge.docx").write_bytes(docx_file("Harrowgate Footbridge", SECTIONS, PARTS))
    (folder / "lock.docx").write_bytes(
        docx_file("Vell Lock", [("Gates", "The lock gates on the Vell canal were rebuilt in 1954 from elm.")])
    )
    index = DocumentIndex(tmp_path / "index", embedder)
    results = index.add_paths([folder])
    assert [r.status for r in results] == ["added", "added"]
    hits = index.search("Who designed the footbridge?", k=2)
    assert hits[0].title == "Harrowgate Footbridge" and "Ola Brenn" in hits[0].text
    assert hits[0].source.endswith("footbridge.docx")
    record = index.get(hits[0].doc_id)
    assert record is not None and record.media_type == SUPPORTED[".docx"]
    table_hit = index.search("What are the cables made of?", k=1, mode="hybrid")[0]
    assert "Material: steel" in table_hit.text
