"""The heritage atlas: HTML page and PDF with a cover, contents, one entry per item with its map
(from the registry's geometries), and an index by county; the PDF is opened back with poppler."""
import re
import shutil
import subprocess

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from loaders.cli import app
from registry.heritage import item_map_svg, list_items
from registry.heritage_atlas import atlas_pdf, build_atlas
from registry.settings import get_settings

NANXUN_TOWN = "330503100"


def _surroundings(conn):
    """A township polygon, a road and a river around 百间楼, so its map has something to draw."""
    lon, lat = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM heritage_items WHERE name = '百间楼'")).one()
    d = conn.execute(text("SELECT id, parent_id FROM divisions WHERE nbs_code = :c"), {"c": NANXUN_TOWN}).one()
    conn.execute(text("UPDATE divisions SET geom = ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(:x, :y), 4490), 0.03)) "
                      "WHERE id = :d"), {"x": lon, "y": lat, "d": d.id})
    for name, cat, wkt in (("南浔大道", "road", f"LINESTRING({lon - 0.03} {lat - 0.004}, {lon + 0.03} {lat - 0.004})"),
                           ("頔塘", "river", f"LINESTRING({lon - 0.03} {lat + 0.003}, {lon + 0.03} {lat + 0.005})")):
        conn.execute(text("INSERT INTO place_names (category, name, division_id, county_id, geom) "
                          "VALUES (:c, :n, :d, :p, ST_GeomFromText(:w, 4490))"),
                     {"c": cat, "n": name, "d": d.id, "p": d.parent_id, "w": wkt})


def test_should_draw_an_items_map_from_the_registrys_geometries(conn, seeded):
    _surroundings(conn)
    item = next(i for i in list_items(conn) if i["name"] == "百间楼")
    svg = item_map_svg(conn, item)
    assert svg.startswith("<svg") and "<title>南浔镇</title>" in svg
    assert "<title>南浔大道</title>" in svg and "<title>頔塘</title>" in svg and "<title>百间楼</title>" in svg
    assert "<image" not in svg and "href" not in svg  # no external tiles


def test_should_serve_the_atlas_page_with_contents_entries_and_an_index(client, conn, seeded):
    res = client.get("/heritage/atlas")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    page = res.text
    assert "湖州市地名文化遗产名录图集" in page and "目录 / contents" in page and "按县区索引 / index by county" in page
    assert page.count("<section class='entry' id='item-") == 15 and page.count("<svg") == 15
    assert "Yishang Jie" in page and "Nanxun" in page and "可信度 / certainty" in page
    for county in ("吴兴区", "南浔区", "德清县", "长兴县"):
        assert f"<h3>{county}</h3>" in page


def test_should_say_an_item_is_synthetic_in_the_atlas(client, conn, seeded):
    conn.execute(text("""INSERT INTO heritage_items (name, level, category, division_id, synthetic, geom)
                         SELECT '合成古镇', 'city', '千年古镇', id, true, ST_PointOnSurface(geom)
                         FROM divisions WHERE nbs_code = '330502'"""))
    page = client.get("/heritage/atlas").text
    assert "合成数据，非真实名录 / synthetic item" in page
    assert "合成古镇" not in client.get("/heritage/atlas", params={"real_only": True}).text


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (scripts/setup-system.sh)")
def test_should_write_a_pdf_atlas_that_opens_back(conn, seeded, tmp_path):
    _surroundings(conn)
    atlas = build_atlas(conn)
    out = tmp_path / "atlas.pdf"
    out.write_bytes(atlas_pdf(atlas))
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert pages == 2 + 15 + 1  # cover, contents, one page per entry, the index
    body = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert "湖州市地名文化遗产名录图集" in body and "目录 / contents" in body and "按县区索引" in body
    assert "Yishang Jie" in body and "新市镇" in body and "第三批 (2025-05)" in body
    contents = subprocess.run(["pdftotext", "-layout", "-f", "2", "-l", "2", str(out), "-"], capture_output=True,
                              text=True, check=True).stdout
    listed = {m[1]: int(m[2]) for m in re.finditer(r"^\s*\d+\. (\S+) .*?(\d+)\s*$", contents, re.M)}
    assert len(listed) == 15
    page = listed["百间楼"]  # the contents point at the page the entry is on
    entry = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(out), "-"], capture_output=True,
                           text=True, check=True).stdout
    assert "百间楼" in entry and "Baijianlou" in entry and "来源 / source" in entry
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", str(page), "-l", str(page), str(out), str(tmp_path / "page")],
                   check=True)
    assert list(tmp_path.glob("page*.png"))


@pytest.fixture()
def runner(database_url, monkeypatch, reference):
    monkeypatch.setenv("REGISTRY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_should_refuse_an_atlas_file_that_is_neither_pdf_nor_html(runner, tmp_path):
    res = runner.invoke(app, ["heritage", "atlas", "-o", str(tmp_path / "atlas.docx")])
    assert res.exit_code != 0 and ".pdf" in res.output
