"""QR images and print sheets of plates in the GB 17733 style.

The plate: white on blue, a white keyline; the Chinese name in the top three fifths of the text
field and its pinyin (capitals, words apart) below; the number; the QR code on the right on a white
square with its quiet zone. A sheet is A4 portrait, four plates a page, cut marks implied by the gaps.

The CJK font is the first found of REGISTRY_PLATE_FONT and the usual Debian paths
(`fonts-wqy-microhei`, installed by scripts/setup-system.sh).
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import segno

from registry.errors import SetupError

BLUE = (0, 71, 157)  # GB 17733 plates: blue ground, white characters
WHITE = (255, 255, 255)
QR_DARK = (0, 32, 80)

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


def qr(url: str) -> segno.QRCode:
    """The QR code of a scan URL: the smallest version at level M (never boosted, so it stays M)."""
    return segno.make(url, error="m", boost_error=False, micro=False)


def qr_svg(url: str, scale: int = 4) -> bytes:
    buf = io.BytesIO()
    qr(url).save(buf, kind="svg", scale=scale, border=4, xmldecl=True, svgns=True, title=url)
    return buf.getvalue()


def qr_png(url: str, scale: int = 8) -> bytes:
    buf = io.BytesIO()
    qr(url).save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


def find_font() -> Path:
    env = os.environ.get("REGISTRY_PLATE_FONT")
    for candidate in ([env] if env else []) + list(FONT_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise SetupError("找不到中文字体，请运行 scripts/setup-system.sh（安装 fonts-wqy-microhei）或设置 "
                     "REGISTRY_PLATE_FONT / no CJK font found: run scripts/setup-system.sh or set REGISTRY_PLATE_FONT")


@dataclass(frozen=True)
class PlateFace:
    """What one printed plate shows."""

    name: str  # 人民路
    pinyin: str  # Renmin Lu
    number: str  # 12号
    url: str  # the signed scan URL in the QR code
    code: str  # the plate's short code, printed small
    kind_name: str = "门牌"


def _qr_runs(code: segno.QRCode) -> list[tuple[int, int, int]]:
    """Dark modules as horizontal runs (row, start column, length): far fewer rectangles to draw."""
    runs = []
    for y, row in enumerate(code.matrix):
        x = 0
        width = len(row)
        while x < width:
            if row[x] & 1:
                start = x
                while x < width and row[x] & 1:
                    x += 1
                runs.append((y, start, x - start))
            else:
                x += 1
    return runs


class PlateSheet:
    """A4 portrait, plates 180 × 60 mm, four a page."""

    PLATE_W = 180.0
    PLATE_H = 60.0
    MARGIN_X = 15.0
    MARGIN_Y = 13.0
    GAP = 8.0
    PER_PAGE = 4

    def __init__(self, font: Path | None = None) -> None:
        from fpdf import FPDF

        self.pdf = FPDF(orientation="P", unit="mm", format="A4")
        self.pdf.set_auto_page_break(False)
        self.pdf.set_title("门牌印制单 / doorplate print sheet")
        self.pdf.set_creator("huzhou-registry")
        font = font or find_font()
        opts = {"collection_font_number": 0} if font.suffix.lower() == ".ttc" else {}
        self.pdf.add_font("cjk", "", str(font), **opts)
        self.count = 0

    def _fit(self, text: str, size: float, max_w: float, min_size: float = 6.0) -> float:
        self.pdf.set_font("cjk", size=size)
        while size > min_size and self.pdf.get_string_width(text) > max_w:
            size -= 1
            self.pdf.set_font("cjk", size=size)
        return size

    def add(self, face: PlateFace) -> None:
        pdf = self.pdf
        slot = self.count % self.PER_PAGE
        if slot == 0:
            pdf.add_page()
        self.count += 1
        x0 = self.MARGIN_X
        y0 = self.MARGIN_Y + slot * (self.PLATE_H + self.GAP)
        w, h = self.PLATE_W, self.PLATE_H

        # the blue ground with a white keyline
        pdf.set_fill_color(*BLUE)
        pdf.rect(x0, y0, w, h, style="F", round_corners=True, corner_radius=3)
        pdf.set_draw_color(*WHITE)
        pdf.set_line_width(0.8)
        pdf.rect(x0 + 2, y0 + 2, w - 4, h - 4, style="D", round_corners=True, corner_radius=2)

        # the QR code on the right: a white square with a 2-module quiet zone inside the keyline
        code = qr(face.url)
        n = len(code.matrix)
        qr_side = h - 8
        qx, qy = x0 + w - 4 - qr_side, y0 + 4
        module = qr_side / (n + 4)
        pdf.set_fill_color(*WHITE)
        pdf.rect(qx, qy, qr_side, qr_side, style="F")
        pdf.set_fill_color(*QR_DARK)
        for ry, rx, rl in _qr_runs(code):
            pdf.rect(qx + (rx + 2) * module, qy + (ry + 2) * module, rl * module + 0.01, module + 0.01, style="F")

        # the number: large, between the name field and the QR code
        num_w = 42.0
        nx = qx - 3 - num_w
        if face.number:
            size = self._fit(face.number, 44, num_w)
            pdf.set_text_color(*WHITE)
            pdf.set_xy(nx, y0 + 4)
            pdf.cell(num_w, h - 8 - 6, face.number, align="C")

        # the name field: Chinese in the top three fifths, pinyin below
        fx, fw = x0 + 6, nx - (x0 + 6) - 3
        inner_h = h - 8
        name_h, pinyin_h = inner_h * 3 / 5, inner_h * 2 / 5
        size = self._fit(face.name, 40, fw)
        pdf.set_text_color(*WHITE)
        pdf.set_xy(fx, y0 + 4)
        pdf.cell(fw, name_h, face.name, align="C")
        if face.name and face.pinyin:
            pdf.set_line_width(0.4)
            pdf.line(fx + 2, y0 + 4 + name_h, fx + fw - 2, y0 + 4 + name_h)
        pinyin = face.pinyin.upper()
        size = self._fit(pinyin, 16, fw)
        pdf.set_xy(fx, y0 + 4 + name_h)
        pdf.cell(fw, pinyin_h * 0.8, pinyin, align="C")

        # the plate's short code, small, under the number
        pdf.set_font("cjk", size=6.5)
        pdf.set_xy(nx, y0 + h - 4 - 6)
        pdf.cell(num_w, 5, f"{face.kind_name} {face.code}", align="C")

    def output(self) -> bytes:
        return bytes(self.pdf.output())


def render_sheet(faces: list[PlateFace], font: Path | None = None) -> bytes:
    sheet = PlateSheet(font)
    for face in faces:
        sheet.add(face)
    if sheet.count == 0:
        sheet.pdf.add_page()
    return sheet.output()
