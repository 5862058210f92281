"""Text from images and scanned PDF pages, by OCR that runs offline.

RapidOCR runs PaddleOCR's PP-OCRv6 text detection and recognition models on onnxruntime, and
the rapidocr wheel ships those models: nothing is downloaded at run time. Creating the engine
and its first run take seconds, so it is made once per process, on the first image, and this
module is imported only when an image or a scan is read: the service starts without it.
"""

from __future__ import annotations

import io
import statistics
import threading
from collections.abc import Sequence
from typing import Any

ENGINE = "RapidOCR (PP-OCRv6)"
# Detection sees the page at most 1280 pixels on its longer side (the default, at least 736 on
# the shorter, enlarges a page): on a dense 200 dpi page that was faster and read more words
# right; recognition reads each line from the full-size image. The 180-degree line classifier
# is off: it turned a fifth of the upright lines of that page over, and they came out garbled.
_PARAMS = {
    "Global.log_level": "error",
    "Global.use_cls": False,
    "Det.limit_type": "max",
    "Det.limit_side_len": 1280,
}
_RENDER_DPI = 200  # what a scanner makes; text lines come out 30-40 pixels high
_MAX_RENDER_SIDE = 2000  # the engine shrinks larger images to this anyway
_lock = threading.Lock()  # one OCR at a time: each run already uses every core
_engine: Any = None


def open_image(data: bytes) -> Any:
    """A PNG or JPEG file as an upright image; Pillow's error if the bytes are no image it can read."""
    from PIL import Image, ImageOps

    image = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])  # no other decoder sees upload bytes
    image.load()  # a truncated file fails here, not inside the engine
    return ImageOps.exif_transpose(image)  # a phone photo is stored sideways with a note to turn it


def image_text(image: Any) -> str:
    """OCR of one image: lines in reading order, a blank line where a paragraph ends."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels hold any colour (often black, under black text): lay them on white.
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, "white")
        image = Image.alpha_composite(canvas, rgba)
    image = image.convert("RGB")
    with _lock:
        result = _get_engine()(image)
    if not result.txts:
        return ""
    return _layout(result.boxes, result.txts)


def scanned_pages_text(data: bytes, pages: Sequence[int]) -> dict[int, str]:
    """OCR of the PDF pages (0-based) that hold images, each rendered as a scanner would see it.

    A page with neither text nor images is blank: it is not rendered, and is left out.
    """
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    out: dict[int, str] = {}
    pdf = pdfium.PdfDocument(data)
    try:
        for index in pages:
            page = pdf[index]
            try:
                if next(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]), None) is None:
                    continue
                width, height = page.get_size()
                scale = min(_RENDER_DPI / 72, _MAX_RENDER_SIDE / max(width, height, 1))
                out[index] = image_text(page.render(scale=scale).to_pil())
            finally:
                page.close()
    finally:
        pdf.close()
    return out


def _get_engine() -> Any:
    global _engine
    if _engine is None:
        from rapidocr import RapidOCR

        _engine = RapidOCR(params=_PARAMS)
    return _engine


def _layout(boxes: Sequence[Any], texts: Sequence[str]) -> str:
    """Boxes on one row joined by spaces (the engine may cut a line at a wide gap), rows by
    newlines, and a blank line where the gap above a row is well over the page's usual gap."""
    found = sorted(_bounds(box, text) for box, text in zip(boxes, texts) if text.strip())
    rows: list[list[tuple[float, float, float, str]]] = []
    for box in found:
        if rows and (box[0] + box[1]) / 2 < max(b[1] for b in rows[-1]):
            rows[-1].append(box)
        else:
            rows.append([box])
    spans = [(min(b[0] for b in row), max(b[1] for b in row)) for row in rows]
    gaps = [max(top - spans[n][1], 0.0) for n, (top, _) in enumerate(spans[1:])]
    usual = statistics.median(gaps) if gaps else 0.0
    lines = [_row_text(rows[0])] if rows else []
    for n, row in enumerate(rows[1:]):
        height = spans[n][1] - spans[n][0]
        if gaps[n] > max(1.5 * usual, 0.5 * height):
            lines.append("")
        lines.append(_row_text(row))
    return "\n".join(lines)


def _row_text(row: list[tuple[float, float, float, str]]) -> str:
    return " ".join(b[3] for b in sorted(row, key=lambda b: b[2]))


def _bounds(box: Any, text: str) -> tuple[float, float, float, str]:
    """(top, bottom, left, text) of a four-corner box."""
    ys, xs = [float(p[1]) for p in box], [float(p[0]) for p in box]
    return min(ys), max(ys), min(xs), text.strip()
