"""QR images and print sheets: an independent decoder (zxing-cpp) reads back the exact scan URL;
the rendered page (pdftoppm) and its text (pdftotext) show the header, the base URL, the quiet
zone; nothing is printed for a base URL that a citizen's phone cannot reach, unless forced."""
import io
import logging
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import segno
import zxingcpp
from PIL import Image
from sqlalchemy import text
from typer.testing import CliRunner

from cli_engine import on_test_connection
from registry.doorplates import plate_url, print_division, qr, qr_png, qr_svg
from registry.doorplates.printing import find_bold_font
from registry.errors import LocalBaseUrl
from registry.settings import get_settings

PUBLIC = "https://dz.huzhou.gov.cn"
LOCAL = "http://127.0.0.1:8000"
needs_poppler = pytest.mark.skipif(not shutil.which("pdftoppm"), reason="poppler-utils missing: run "
                                                                          "scripts/setup-system.sh")


@pytest.fixture()
def base_url() -> str:
    """Sheets and QR codes here are made for a public base URL (the default 127.0.0.1 is refused)."""
    return PUBLIC


@pytest.fixture()
def app_settings(settings):
    return settings.model_copy(update={"key_cache_seconds": 0.0, "doorplate_scan_flush_seconds": 0.0,
                                       "public_base_url": PUBLIC})


@pytest.fixture()
def local_client(conn, engine, settings):
    """The API as configured out of the box: REGISTRY_PUBLIC_BASE_URL = http://127.0.0.1:8000."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import get_conn

    app = create_app(settings.model_copy(update={"key_cache_seconds": 0.0, "public_base_url": LOCAL}), engine=engine)
    app.dependency_overrides[get_conn] = lambda: (yield conn)
    with TestClient(app) as c:
        yield c


def _decode(png: bytes) -> list[str]:
    img = Image.open(io.BytesIO(png)).convert("L")
    return [r.text for r in zxingcpp.read_barcodes(img) if r.format == zxingcpp.BarcodeFormat.QRCode]


def _pdftotext(pdf: bytes, tmp_path: Path) -> list[str]:
    """The text of each page."""
    path = tmp_path / "sheet.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return out.split("\f")


def _render(pdf: bytes, tmp_path: Path, dpi: int = 300) -> Image.Image:
    path = tmp_path / "render.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-f", "1", "-l", "1", str(path), str(tmp_path / "render")],
                   check=True)
    [png] = list(tmp_path.glob("render*.png"))
    return Image.open(png).convert("L")


def test_should_print_a_qr_code_that_an_independent_decoder_reads_back(client, make_address, plate_for, editor):
    pid, token, url = plate_for(make_address())
    res = client.get(f"/v1/doorplates/{pid}/qr.png", headers=editor)
    assert res.status_code == 200 and res.headers["content-type"] == "image/png"
    assert res.headers["x-doorplate-url"] == url
    assert _decode(res.content) == [url]
    assert urlsplit(url).path == f"/p/{token}"


def test_should_keep_the_qr_code_at_version_3_level_m(make_address, plate_for):
    _, _, url = plate_for(make_address())
    code = segno.make(url, error="m")
    assert code.version <= 3
    assert _decode(qr_png(url, scale=4)) == [url]


def test_should_serve_the_qr_code_as_svg(client, make_address, plate_for, editor):
    pid, _, url = plate_for(make_address())
    res = client.get(f"/v1/doorplates/{pid}/qr.svg", headers=editor)
    assert res.status_code == 200 and res.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in res.content and res.content == qr_svg(url)


def test_should_serve_qr_codes_only_to_the_printing_office(client, make_address, plate_for, agency):
    pid, _, _ = plate_for(make_address())
    assert client.get(f"/v1/doorplates/{pid}/qr.png").status_code == 403
    assert client.get(f"/v1/doorplates/{pid}/qr.svg", headers=agency).status_code == 403


@needs_poppler
def test_should_print_a_pdf_sheet_whose_plates_carry_their_names_and_codes(conn, make_address, plate_for, place,
                                                                           ring, base_url, tmp_path: Path):
    urls = set()
    for street, number in (("人民路", "12号"), ("人民路", "14号"), ("凤凰路", "3号")):
        _, _, url = plate_for(make_address(street=street, number=number))
        urls.add(url)
    pdf, n = print_division(conn, place.village_code, ring=ring, base_url=base_url)
    assert n == 3 and pdf.startswith(b"%PDF")
    path = tmp_path / "plates.pdf"
    path.write_bytes(pdf)
    words = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                           check=True).stdout
    for expected in ("人民路", "RENMIN LU", "凤凰路", "FENGHUANG LU", "12号", "14号", "3号"):
        assert expected in words, expected
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")],
                   check=True)
    [page] = list(tmp_path.glob("page*.png"))
    assert set(_decode(page.read_bytes())) == urls


def test_should_name_the_parameter_of_a_bad_print_request(conn, ring, base_url):
    from registry.errors import InvalidQuery

    with pytest.raises(InvalidQuery) as err:
        print_division(conn, "330502", ring=ring, base_url=base_url, kind="sticker")
    assert err.value.parameter == "kind"


def test_should_give_the_same_url_for_a_plate_every_time(conn, make_address, plate_for, ring, base_url):
    pid, _, url = plate_for(make_address())
    assert plate_url(conn, pid, ring=ring, base_url=base_url) == url


# --- the base URL: nothing printable while it is not public -------------------------------------------
@pytest.mark.parametrize("url", [LOCAL, "http://localhost:8000", "http://192.168.1.20", "http://[::1]:8000",
                                 "http://169.254.10.1", "http://registry:8000"])
def test_should_refuse_to_print_a_sheet_for_a_base_url_no_phone_can_reach(conn, make_address, plate_for, place,
                                                                          ring, url):
    plate_for(make_address())
    with pytest.raises(LocalBaseUrl) as err:
        print_division(conn, place.village_code, ring=ring, base_url=url)
    assert err.value.parameter == "REGISTRY_PUBLIC_BASE_URL"
    assert url in err.value.message and "--force-local-url" in err.value.message


@needs_poppler
def test_should_print_for_a_local_base_url_only_when_forced_and_say_so_on_the_sheet(conn, make_address, plate_for,
                                                                                    place, ring, tmp_path):
    plate_for(make_address())
    pdf, n = print_division(conn, place.village_code, ring=ring, base_url=LOCAL, force_local_url=True)
    [page, *_] = _pdftotext(pdf, tmp_path)
    assert n == 1 and LOCAL in page
    assert "仅供测试" in page and "testing only" in page


def test_should_refuse_qr_images_for_printing_while_the_base_url_is_local(local_client, make_address, plate_for,
                                                                          editor):
    pid, _, _ = plate_for(make_address())
    for image in ("qr.png", "qr.svg"):
        res = local_client.get(f"/v1/doorplates/{pid}/{image}", headers=editor)
        assert res.status_code == 409 and res.headers["content-type"].startswith("application/problem+json")
        problem = res.json()
        assert problem["parameter"] == "REGISTRY_PUBLIC_BASE_URL" and LOCAL in problem["detail"]
        assert "force_local_url" in problem["detail"]
        forced = local_client.get(f"/v1/doorplates/{pid}/{image}?force_local_url=true", headers=editor)
        assert forced.status_code == 200 and forced.headers["x-doorplate-url"].startswith(LOCAL + "/p/")
        assert "not a public address" in forced.headers["x-doorplate-warning"]
    forced_png = local_client.get(f"/v1/doorplates/{pid}/qr.png?force_local_url=true", headers=editor).content
    [decoded] = _decode(forced_png)
    assert decoded.startswith(LOCAL + "/p/")


def test_should_still_answer_404_for_a_missing_plate_before_judging_the_base_url(local_client, editor):
    assert local_client.get("/v1/doorplates/987654321/qr.png", headers=editor).status_code == 404


# --- the sheet: header, margin, quiet zone, bold face --------------------------------------------------
@needs_poppler
def test_should_head_every_page_with_division_batch_page_and_base_url(conn, make_address, plate_for, place, ring,
                                                                      tmp_path):
    for number in range(1, 6):  # five plates: two pages
        plate_for(make_address(number=f"{number * 2}号"))
    pdf, n = print_division(conn, place.village_code, ring=ring, base_url=PUBLIC)
    pages = [p for p in _pdftotext(pdf, tmp_path) if p.strip()]
    assert n == 5 and len(pages) == 2
    change_set = conn.execute(text(
        "SELECT max(d.change_set_id) FROM doorplates d JOIN addresses a ON a.id = d.address_id "
        "WHERE a.division_id = :v"), {"v": place.village_id}).scalar_one()
    for number, page in enumerate(pages, start=1):
        assert f"page {number} of 2" in page and f"第 {number} 页 / 共 2 页" in page
        assert place.village in page and place.township in page and place.village_code in page
        assert re.search(r"batch P[0-9A-F]{8}", page)
        assert f"#{change_set}" in page
        assert "180 × 60 mm" in page
        assert page.count(PUBLIC) >= 2  # the header and the bottom margin
        lines = [line for line in page.splitlines() if line.strip()]
        assert PUBLIC in lines[-1]  # … the last line on the page: the margin


@needs_poppler
def test_should_keep_a_quiet_zone_of_four_modules_around_every_qr_code(conn, make_address, plate_for, place, ring,
                                                                       tmp_path):
    urls = {plate_for(make_address(number=f"{k}号"))[2] for k in (1, 3, 5, 7)}
    pdf, _ = print_division(conn, place.village_code, ring=ring, base_url=PUBLIC)
    img = _render(pdf, tmp_path)
    pixels = np.asarray(img)
    found = [r for r in zxingcpp.read_barcodes(img) if r.format == zxingcpp.BarcodeFormat.QRCode]
    assert {r.text for r in found} == urls
    for r in found:
        pos = r.position
        xs = [pos.top_left.x, pos.top_right.x, pos.bottom_left.x, pos.bottom_right.x]
        ys = [pos.top_left.y, pos.top_right.y, pos.bottom_left.y, pos.bottom_right.y]
        modules = qr(r.text).symbol_size(border=0)[0]
        module_px = (max(xs) - min(xs)) / modules
        # the symbol's exact extent: the dark pixels within a module of where the decoder found it
        m = int(module_px)
        box = pixels[min(ys) - m:max(ys) + m + 1, min(xs) - m:max(xs) + m + 1] < 128
        rows, cols = np.where(box.any(axis=1))[0], np.where(box.any(axis=0))[0]
        y0, y1 = min(ys) - m + rows[0], min(ys) - m + rows[-1]
        x0, x1 = min(xs) - m + cols[0], min(xs) - m + cols[-1]
        module_px = (x1 - x0 + 1) / modules
        q = int(4 * module_px) - 1  # ISO/IEC 18004: 4 modules; one pixel for the anti-aliased edge
        ring_ = pixels[y0 - q:y1 + q + 1, x0 - q:x1 + q + 1].copy()
        ring_[q:-q, q:-q] = 255  # the symbol itself
        assert ring_.min() > 200, f"dark pixels within 4 modules of the QR code of {r.text}"
        # … and the blue of the plate is not far beyond: the zone is the white square, not the page
        assert pixels[y0 - 3 * q:y1 + 3 * q, x0 - 3 * q:x1 + 3 * q].min() < 100


@needs_poppler
@pytest.mark.skipif(find_bold_font() is None, reason="no bold CJK font: run scripts/setup-system.sh (fonts-noto-cjk)")
def test_should_set_road_name_and_number_in_a_bold_cjk_face(conn, make_address, plate_for, place, ring, tmp_path):
    plate_for(make_address())
    pdf, _ = print_division(conn, place.village_code, ring=ring, base_url=PUBLIC)
    path = tmp_path / "sheet.pdf"
    path.write_bytes(pdf)
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"CJK\S*Bold", fonts), fonts


def test_should_print_without_font_subsetting_chatter_in_the_log(conn, make_address, plate_for, place, ring, caplog):
    plate_for(make_address())
    with caplog.at_level(logging.INFO):
        print_division(conn, place.village_code, ring=ring, base_url=PUBLIC)
    assert not [r for r in caplog.records if r.name.startswith("fontTools")]


# --- `registry plates print` ---------------------------------------------------------------------------
@pytest.fixture()
def cli(conn, monkeypatch):
    import loaders.plates_cli as plates_cli
    from loaders.cli import app

    on_test_connection(monkeypatch, conn, plates_cli)

    def run(*args: str, base_url: str | None = None):
        if base_url is None:
            monkeypatch.delenv("REGISTRY_PUBLIC_BASE_URL", raising=False)
        else:
            monkeypatch.setenv("REGISTRY_PUBLIC_BASE_URL", base_url)
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args))
        finally:
            get_settings.cache_clear()

    return run


def test_should_refuse_plates_print_with_the_default_base_url(cli, make_address, plate_for, place, tmp_path):
    plate_for(make_address())
    out = tmp_path / "plates.pdf"
    result = cli("plates", "print", "--division", place.village_code, "-o", str(out))
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert "REGISTRY_PUBLIC_BASE_URL=http://127.0.0.1:8000" in line and "--force-local-url" in line
    assert not out.exists()


def test_should_print_with_force_local_url_after_a_warning_line(cli, make_address, plate_for, place, tmp_path):
    plate_for(make_address())
    out = tmp_path / "plates.pdf"
    result = cli("plates", "print", "--division", place.village_code, "-o", str(out), "--force-local-url")
    assert result.exit_code == 0, result.stderr
    assert "1 plates" in result.stdout and out.read_bytes().startswith(b"%PDF")
    [warning] = [line for line in result.stderr.splitlines() if "warning" in line]
    assert "127.0.0.1" in warning


def test_should_print_for_a_public_base_url_without_a_warning(cli, make_address, plate_for, place, tmp_path):
    _, _, url = plate_for(make_address())
    out = tmp_path / "plates.pdf"
    result = cli("plates", "print", "--division", place.village_code, "-o", str(out), base_url=PUBLIC + "/")
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr and "fontTools" not in result.stderr
    if shutil.which("pdftoppm"):
        [page, *_] = _pdftotext(out.read_bytes(), tmp_path)
        assert PUBLIC in page and PUBLIC + "/" + "/" not in page
