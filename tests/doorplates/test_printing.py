"""QR images and print sheets: an independent decoder (zxing-cpp) reads back the exact scan URL."""
import io
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import segno
import zxingcpp
from PIL import Image

from registry.doorplates import plate_url, print_division, qr_png, qr_svg


def _decode(png: bytes) -> list[str]:
    img = Image.open(io.BytesIO(png)).convert("L")
    return [r.text for r in zxingcpp.read_barcodes(img) if r.format == zxingcpp.BarcodeFormat.QRCode]


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


@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="poppler-utils missing: run scripts/setup-system.sh")
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
