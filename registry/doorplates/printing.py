"""QR images and print sheets of plates in the GB 17733 style.

The plate: white on blue, a white keyline; the Chinese name in the top three fifths of the text
field, in a bold 黑体 face as on a real plate, and its pinyin (capitals, words apart) below; the
number, bold; the QR code on the right on a white square that keeps a quiet zone of 4 modules
(ISO/IEC 18004) on every side. A sheet is A4 portrait, four plates a page, with cut marks at each
plate's corners; every page's header names the division (name and codes), the batch and the change
sets of its plates, the page (N of M), the base URL in the QR codes and the plate size, and the
bottom margin repeats the base URL.

Printing is refused while REGISTRY_PUBLIC_BASE_URL is not a public address (see
`check_printable_base_url`): a plate with a dead QR code stays on a wall for years.

Fonts: the regular face is the first found of REGISTRY_PLATE_FONT and the usual Debian paths
(`fonts-wqy-microhei`); the bold one of REGISTRY_PLATE_BOLD_FONT and Noto Sans CJK SC Bold
(`fonts-noto-cjk`), both installed by scripts/setup-system.sh. Without a bold face the sheet is
printed in the regular one, with a warning in the log.
"""
from __future__ import annotations

import hashlib
import io
import logging
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import segno

from registry.errors import LocalBaseUrl, SetupError
from registry.settings import local_url_reason

log = logging.getLogger(__name__)
# fpdf2 subsets the fonts with fontTools, which logs some forty INFO lines per sheet.
logging.getLogger("fontTools").setLevel(logging.WARNING)

BLUE = (0, 71, 157)  # GB 17733 plates: blue ground, white characters
WHITE = (255, 255, 255)
QR_DARK = (0, 32, 80)
INK = (0, 0, 0)
ALERT = (200, 0, 0)
QUIET_MODULES = 4  # ISO/IEC 18004: the quiet zone is at least 4 modules wide
TZ = ZoneInfo("Asia/Shanghai")

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
BOLD_FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",  # Debian/Ubuntu fonts-noto-cjk
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Black.ttc",  # fonts-noto-cjk-extra
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",  # Arch, Fedora
)


# --- the base URL -------------------------------------------------------------------------------------
def check_printable_base_url(base_url: str, *, force: bool = False, hint: str = "--force-local-url") -> str | None:
    """Raise LocalBaseUrl (naming REGISTRY_PUBLIC_BASE_URL and `hint`, the way to force it) when
    `base_url` is not public; when forced, return the warning to show. None for a public URL."""
    reason = local_url_reason(base_url)
    if reason is None:
        return None
    zh, _, en = reason.partition(" / ")
    if not force:
        raise LocalBaseUrl(
            f"REGISTRY_PUBLIC_BASE_URL={base_url} 不是公网地址（{zh}），印出的门牌二维码将无法扫开；"
            f"请设置公网网址，或用 {hint} 强制 / REGISTRY_PUBLIC_BASE_URL={base_url} is not public ({en}): "
            f"printed QR codes would be dead; set the public URL, or force with {hint}",
            parameter="REGISTRY_PUBLIC_BASE_URL", base_url=base_url)
    return (f"REGISTRY_PUBLIC_BASE_URL={base_url} 不是公网地址（{zh}），二维码仅供测试 / "
            f"is not public ({en}): QR codes for testing only")


# --- QR codes ------------------------------------------------------------------------------------------
def qr(url: str) -> segno.QRCode:
    """The QR code of a scan URL: the smallest version at level M (never boosted, so it stays M)."""
    return segno.make(url, error="m", boost_error=False, micro=False)


def qr_svg(url: str, scale: int = 4) -> bytes:
    buf = io.BytesIO()
    qr(url).save(buf, kind="svg", scale=scale, border=QUIET_MODULES, xmldecl=True, svgns=True, title=url)
    return buf.getvalue()


def qr_png(url: str, scale: int = 8) -> bytes:
    buf = io.BytesIO()
    qr(url).save(buf, kind="png", scale=scale, border=QUIET_MODULES)
    return buf.getvalue()


# --- fonts ---------------------------------------------------------------------------------------------
def _first(env: str, candidates: tuple[str, ...]) -> Path | None:
    configured = os.environ.get(env)
    for candidate in ([configured] if configured else []) + list(candidates):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def find_font() -> Path:
    found = _first("REGISTRY_PLATE_FONT", FONT_CANDIDATES)
    if found is None:
        raise SetupError("找不到中文字体，请运行 scripts/setup-system.sh（安装 fonts-wqy-microhei）或设置 "
                         "REGISTRY_PLATE_FONT / no CJK font found: run scripts/setup-system.sh or set REGISTRY_PLATE_FONT")
    return found


def find_bold_font() -> Path | None:
    """The bold CJK face for names and numbers, or None (the sheet then uses the regular face)."""
    return _first("REGISTRY_PLATE_BOLD_FONT", BOLD_FONT_CANDIDATES)


@lru_cache(maxsize=8)
def _collection_index(path: str) -> int:
    """In a font collection, the Simplified Chinese face (Noto's .ttc starts with the Japanese one)."""
    if not path.lower().endswith((".ttc", ".otc")):
        return -1
    from fontTools.ttLib import TTCollection

    collection = TTCollection(path, lazy=True)
    try:
        for i, font in enumerate(collection.fonts):
            family = font["name"].getDebugName(1) or ""
            if family.endswith(" SC") or " SC " in family:
                return i
    finally:
        collection.close()
    return 0


def _add_font(pdf, style: str, path: Path) -> None:
    index = _collection_index(str(path))
    opts = {"collection_font_number": index} if index >= 0 else {}
    pdf.add_font("cjk", style, str(path), **opts)


# --- what is printed -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlateFace:
    """What one printed plate shows."""

    name: str  # 人民路
    pinyin: str  # Renmin Lu
    number: str  # 12号
    url: str  # the signed scan URL in the QR code
    code: str  # the plate's short code, printed small
    kind_name: str = "门牌"


@dataclass(frozen=True)
class SheetHeader:
    """What each page's header and margin say about the print run."""

    base_url: str
    division: str = ""  # 湖州市 吴兴区 康山街道
    codes: str = ""  # 330502010 (MCA 2025) · 330502007 (NBS 2023)
    batch: str = ""  # a digest of the plates printed: the same plates, the same batch
    change_sets: tuple[int, ...] = ()
    printed_at: datetime = field(default_factory=lambda: datetime.now(TZ))
    warning: str | None = None  # set when printing was forced with a non-public base URL


def batch_id(plate_ids: list[int], base_url: str) -> str:
    digest = hashlib.sha1((base_url + "|" + ",".join(map(str, plate_ids))).encode()).hexdigest()
    return "P" + digest[:8].upper()


def sheet_header(conn, division: str, plate_ids: list[int], *, base_url: str, authority: str | None = None,
                 warning: str | None = None) -> SheetHeader:
    """The header of a division's print run: the division's chain and codes, the batch, the change
    sets that issued or last changed the plates printed."""
    from sqlalchemy import bindparam, text

    from registry.divisions import parent_chain, resolve_division_id

    division_id, _ = resolve_division_id(conn, division, parameter="division", authority=authority)
    row = conn.execute(text("SELECT name, mca_code, nbs_code FROM divisions WHERE id = :id"),
                       {"id": division_id}).one()
    chain = [d.name for d in parent_chain(conn, division_id) if d.level not in ("province",)] + [row.name]
    codes = []
    if row.mca_code:
        codes.append(f"{row.mca_code} (民政 MCA 2025)")
    if row.nbs_code and row.nbs_code != row.mca_code:
        codes.append(f"{row.nbs_code} (统计 NBS 2023)")
    change_sets: tuple[int, ...] = ()
    if plate_ids:
        change_sets = tuple(conn.execute(text(
            "SELECT DISTINCT change_set_id FROM doorplates WHERE id IN :ids AND change_set_id IS NOT NULL "
            "ORDER BY 1").bindparams(bindparam("ids", expanding=True)), {"ids": list(plate_ids)}).scalars())
    return SheetHeader(base_url=base_url, division=" ".join(chain), codes=" · ".join(codes),
                       batch=batch_id(list(plate_ids), base_url), change_sets=change_sets, warning=warning)


def _change_set_text(ids: tuple[int, ...]) -> str:
    if not ids:
        return "—"
    if len(ids) <= 4:
        return ", ".join(f"#{i}" for i in ids)
    return f"#{ids[0]}–#{ids[-1]} ({len(ids)})"


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
    """A4 portrait, plates 180 × 60 mm, four a page, a header above and the base URL below."""

    PAGE_W = 210.0
    PLATE_W = 180.0
    PLATE_H = 60.0
    MARGIN_X = 15.0
    TOP = 23.0  # the first plate; the header sits above it
    GAP = 8.0
    PER_PAGE = 4
    FOOTER_Y = 289.0
    MARK_OFFSET = 1.0  # cut marks stop this far from the plate's edge, so no ink is left on the plate
    MARK_LENGTH = 2.5

    def __init__(self, font: Path | None = None, *, bold_font: Path | None = None,
                 header: SheetHeader | None = None, pages: int | None = None) -> None:
        from fpdf import FPDF

        self.pdf = FPDF(orientation="P", unit="mm", format="A4")
        self.pdf.set_auto_page_break(False)
        self.pdf.set_title("门牌印制单 / doorplate print sheet")
        self.pdf.set_creator("huzhou-registry")
        _add_font(self.pdf, "", font or find_font())
        bold = bold_font or find_bold_font()
        self.bold = bold is not None
        if bold is None:
            log.warning("未找到中文粗体字体，门牌用常规字体印制（安装 fonts-noto-cjk）/ no bold CJK font: plates are "
                        "printed in the regular face (install fonts-noto-cjk or set REGISTRY_PLATE_BOLD_FONT)")
        _add_font(self.pdf, "B", bold or font or find_font())
        self.header = header
        self.pages = pages
        self.count = 0

    def _fit(self, text: str, size: float, max_w: float, min_size: float = 6.0, style: str = "") -> float:
        self.pdf.set_font("cjk", style, size=size)
        while size > min_size and self.pdf.get_string_width(text) > max_w:
            size -= 1
            self.pdf.set_font("cjk", style, size=size)
        return size

    # --- the page: header, margin, cut marks --------------------------------------------------------
    def _page(self) -> None:
        pdf = self.pdf
        pdf.add_page()
        h = self.header
        if h is None:
            return
        page, pages = pdf.page_no(), self.pages or pdf.page_no()
        x, w = self.MARGIN_X, self.PLATE_W
        pdf.set_text_color(*INK)
        title = "门牌印制单 / doorplate print sheet"
        if h.division:
            title += f"　{h.division}"
        self._fit(title, 10, w * 0.72, style="B")
        pdf.set_xy(x, 6)
        pdf.cell(w * 0.72, 4.5, title)
        pdf.set_font("cjk", "B", 9)
        pdf.set_xy(x + w * 0.72, 6)
        pdf.cell(w * 0.28, 4.5, f"第 {page} 页 / 共 {pages} 页 · page {page} of {pages}", align="R")
        line2 = (f"代码 / code {h.codes or '—'}　批次 / batch {h.batch or '—'}　"
                 f"变更集 / change sets {_change_set_text(h.change_sets)}　"
                 f"印制 / printed {h.printed_at:%Y-%m-%d %H:%M %z}")
        self._fit(line2, 7.5, w, min_size=5)
        pdf.set_xy(x, 10.8)
        pdf.cell(w, 3.5, line2)
        line3 = (f"二维码网址 / QR base URL: {h.base_url}　"
                 f"门牌尺寸 / plate size {self.PLATE_W:.0f} × {self.PLATE_H:.0f} mm（按 100% 打印 / print at 100%）")
        self._fit(line3, 7.5, w, min_size=5)
        pdf.set_xy(x, 14.6)
        pdf.cell(w, 3.5, line3)
        if h.warning:
            pdf.set_text_color(*ALERT)
            self._fit(h.warning, 7.5, w, min_size=5, style="B")
            pdf.set_xy(x, 18.2)
            pdf.cell(w, 3.5, h.warning)
        # the bottom margin: the base URL again, where the guillotine leaves it on the offcut
        pdf.set_text_color(*INK)
        footer = (f"{h.base_url}　·　{self.PLATE_W:.0f} × {self.PLATE_H:.0f} mm　·　"
                  f"{h.batch}　·　{page}/{pages}")
        self._fit(footer, 7, w, min_size=5)
        pdf.set_xy(x, self.FOOTER_Y)
        pdf.cell(w, 3.5, footer, align="C")

    def _cut_marks(self, x0: float, y0: float) -> None:
        pdf = self.pdf
        pdf.set_draw_color(*INK)
        pdf.set_line_width(0.2)
        off, length = self.MARK_OFFSET, self.MARK_LENGTH
        for x in (x0, x0 + self.PLATE_W):
            for y in (y0, y0 + self.PLATE_H):
                sx = -1 if x == x0 else 1
                sy = -1 if y == y0 else 1
                pdf.line(x + sx * off, y, x + sx * (off + length), y)  # horizontal, in the side margin
                pdf.line(x, y + sy * off, x, y + sy * (off + length))  # vertical, in the gap

    # --- one plate ---------------------------------------------------------------------------------
    def add(self, face: PlateFace) -> None:
        pdf = self.pdf
        slot = self.count % self.PER_PAGE
        if slot == 0:
            self._page()
        self.count += 1
        x0 = self.MARGIN_X
        y0 = self.TOP + slot * (self.PLATE_H + self.GAP)
        w, h = self.PLATE_W, self.PLATE_H
        self._cut_marks(x0, y0)

        # the blue ground with a white keyline
        pdf.set_fill_color(*BLUE)
        pdf.rect(x0, y0, w, h, style="F", round_corners=True, corner_radius=3)
        pdf.set_draw_color(*WHITE)
        pdf.set_line_width(0.8)
        pdf.rect(x0 + 2, y0 + 2, w - 4, h - 4, style="D", round_corners=True, corner_radius=2)

        # the QR code on the right: a white square holding the symbol and its 4-module quiet zone
        code = qr(face.url)
        n = len(code.matrix)
        qr_side = h - 8
        qx, qy = x0 + w - 4 - qr_side, y0 + 4
        module = qr_side / (n + 2 * QUIET_MODULES)
        pdf.set_fill_color(*WHITE)
        pdf.rect(qx, qy, qr_side, qr_side, style="F")
        pdf.set_fill_color(*QR_DARK)
        q = QUIET_MODULES
        for ry, rx, rl in _qr_runs(code):
            pdf.rect(qx + (rx + q) * module, qy + (ry + q) * module, rl * module + 0.01, module + 0.01, style="F")

        # the number: large and bold, between the name field and the QR code
        num_w = 42.0
        nx = qx - 3 - num_w
        pdf.set_text_color(*WHITE)
        if face.number:
            self._fit(face.number, 44, num_w, style="B")
            pdf.set_xy(nx, y0 + 4)
            pdf.cell(num_w, h - 8 - 6, face.number, align="C")

        # the name field: bold Chinese in the top three fifths, pinyin below
        fx, fw = x0 + 6, nx - (x0 + 6) - 3
        inner_h = h - 8
        name_h, pinyin_h = inner_h * 3 / 5, inner_h * 2 / 5
        self._fit(face.name, 40, fw, style="B")
        pdf.set_xy(fx, y0 + 4)
        pdf.cell(fw, name_h, face.name, align="C")
        if face.name and face.pinyin:
            pdf.set_line_width(0.4)
            pdf.line(fx + 2, y0 + 4 + name_h, fx + fw - 2, y0 + 4 + name_h)
        pinyin = face.pinyin.upper()
        self._fit(pinyin, 16, fw)
        pdf.set_xy(fx, y0 + 4 + name_h)
        pdf.cell(fw, pinyin_h * 0.8, pinyin, align="C")

        # the plate's short code, small, under the number
        pdf.set_font("cjk", size=6.5)
        pdf.set_xy(nx, y0 + h - 4 - 6)
        pdf.cell(num_w, 5, f"{face.kind_name} {face.code}", align="C")

    def output(self) -> bytes:
        return bytes(self.pdf.output())


def render_sheet(faces: list[PlateFace], font: Path | None = None, *, header: SheetHeader | None = None) -> bytes:
    pages = max(1, math.ceil(len(faces) / PlateSheet.PER_PAGE))
    sheet = PlateSheet(font, header=header, pages=pages)
    for face in faces:
        sheet.add(face)
    if sheet.count == 0:
        sheet._page()
    return sheet.output()
