"""Small real files the tests upload and parse."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image


def tiny_pdf(lines: list[str], title: str = "Harbour notes") -> bytes:
    """A real one-page PDF with a text stream, written by hand (no PDF library writes text)."""
    content = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({title}) >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


# Office files, e-books and images, each written by the library made for its format.

FONT_FILES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
]


def docx_file(title: str, sections: list[tuple[str, str]], table: list[list[str]] | None = None) -> bytes:
    """A Word document: a Title, a Heading 1 and a paragraph per section, then a table."""
    from docx import Document

    document = Document()
    if title:
        document.add_heading(title, level=0)
    for heading, paragraph in sections:
        document.add_heading(heading, level=1)
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table):
            for cell, value in zip(row.cells, values):
                cell.text = value
    return _saved(document)


def pptx_file(slides: list[tuple[str, list[str]]]) -> bytes:
    """A deck of title-and-content slides."""
    from pptx import Presentation

    deck = Presentation()
    for title, bullets in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0]
        for bullet in bullets[1:]:
            body.add_paragraph().text = bullet
    return _saved(deck)


def xlsx_file(sheets: dict[str, list[list[object]]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    return _saved(book)


def odt_file(title: str, sections: list[tuple[str, str]], table: list[list[str]] | None = None) -> bytes:
    """An OpenDocument text: outline-level headings, paragraphs and a table."""
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, P

    document = OpenDocumentText()
    document.text.addElement(H(outlinelevel=1, text=title))
    for heading, paragraph in sections:
        document.text.addElement(H(outlinelevel=2, text=heading))
        document.text.addElement(P(text=paragraph))
    if table:
        grid = Table(name="Table1")
        grid.addElement(TableColumn(numbercolumnsrepeated=len(table[0])))
        for values in table:
            row = TableRow()
            for value in values:
                cell = TableCell()
                cell.addElement(P(text=value))
                row.addElement(cell)
            grid.addElement(row)
        document.text.addElement(grid)
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def epub_file(title: str, chapters: list[tuple[str, str]]) -> bytes:
    """An EPUB 3 book with a navigation document and one XHTML file per chapter."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("ragpause-sample")
    book.set_title(title)
    book.set_language("en")
    items = []
    for n, (heading, paragraph) in enumerate(chapters, start=1):
        chapter = epub.EpubHtml(title=heading, file_name=f"chapter{n}.xhtml", lang="en")
        chapter.content = f"<html><body><h1>{heading}</h1><p>{paragraph}</p></body></html>"
        book.add_item(chapter)
        items.append(chapter)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    out = io.BytesIO()
    epub.write_epub(out, book)
    return out.getvalue()


def text_image(lines: list[str], size: tuple[int, int] = (1700, 2200), font_px: int = 33) -> Image.Image:
    """A page as a 200 dpi scanner would see it (12 pt text is ~33 pixels): black text on white."""
    from PIL import Image, ImageDraw, ImageFont

    font_file = next((f for f in FONT_FILES if Path(f).exists()), None)
    font = ImageFont.truetype(font_file, font_px) if font_file else ImageFont.load_default(size=font_px)
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    for n, line in enumerate(lines):
        draw.text((150, 200 + n * int(font_px * 1.6)), line, fill=0, font=font)
    return page


def png_file(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def sideways_jpeg(image: Image.Image) -> bytes:
    """A phone photo: the pixels stored turned a quarter left, with the EXIF note to turn them back."""
    from PIL import Image as PILImage

    exif = PILImage.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    out = io.BytesIO()
    image.convert("RGB").rotate(90, expand=True).save(out, format="JPEG", quality=90, exif=exif)
    return out.getvalue()


def image_only_pdf(image: Image.Image, dpi: int = 200) -> bytes:
    """A scanned PDF: one page whose only content is the image, no text layer."""
    out = io.BytesIO()
    image.save(out, format="PDF", resolution=dpi)
    return out.getvalue()


def _saved(document: object) -> bytes:
    out = io.BytesIO()
    document.save(out)  # type: ignore[attr-defined]
    return out.getvalue()
