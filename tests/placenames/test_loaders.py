"""Place names from CSV, XLSX and GeoPackage through the common loader: 专名/通名 and the
romanization filled in, bad rows rejected with reasons, one change set, idempotent."""
import csv

import geopandas as gpd
import pyogrio
import pytest
from shapely import wkt as shapely_wkt
from sqlalchemy import text

from loaders.run import FileOptions, load_entities_file
from registry.loading.entities import EntityOptions

AISHAN = "330502003"
ROWS = [
    {"name": "衣裳街", "category": "道路", "township_code": AISHAN, "wkt": "LINESTRING(120.08 30.86, 120.09 30.86)",
     "approval_ref": "湖政发〔2026〕1号"},
    {"name": "仁皇山路", "category": "road", "township_code": AISHAN, "wkt": "LINESTRING(120.07 30.88, 120.08 30.89)",
     "approval_ref": ""},
    {"name": "坏类别路", "category": "raod", "township_code": AISHAN, "wkt": "POINT(120.08 30.87)", "approval_ref": ""},
    {"name": "无区划路", "category": "road", "township_code": "330599999", "wkt": "POINT(120.08 30.87)",
     "approval_ref": ""},
]


def _load(conn, path, tmp_path):
    rejects = tmp_path / f"{path.stem}_rejects.csv"
    report = load_entities_file(conn, path, "place-names", FileOptions(crs="EPSG:4490", reject_file=rejects),
                                EntityOptions(source=path.name, actor="tests", code_authority="nbs2023"))
    return report, rejects


def _write(kind, tmp_path):
    if kind == "csv":
        path = tmp_path / "names.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(ROWS[0]))
            w.writeheader()
            w.writerows(ROWS)
    elif kind == "xlsx":
        path = tmp_path / "names.xlsx"
        df = gpd.GeoDataFrame(ROWS, geometry=[None] * len(ROWS)).drop(columns="geometry")
        pyogrio.write_dataframe(df, path, driver="XLSX")
    else:
        path = tmp_path / "names.gpkg"
        rows = [{k: v for k, v in r.items() if k != "wkt"} for r in ROWS]
        gdf = gpd.GeoDataFrame(rows, geometry=[shapely_wkt.loads(r["wkt"]) for r in ROWS], crs="EPSG:4490")
        pyogrio.write_dataframe(gdf, path, layer="place_names", driver="GPKG")
    return path


@pytest.mark.parametrize("kind", ["csv", "xlsx", "gpkg"])
def test_should_load_place_names_reject_bad_rows_with_reasons_and_romanize(conn, tmp_path, kind):
    path = _write(kind, tmp_path)
    report, rejects = _load(conn, path, tmp_path)
    assert report.inserted == 2 and report.rejected == 2, report
    got = {r["name"]: r for r in conn.execute(text(
        "SELECT name, specific_part, generic_part, romanized, approval_ref, change_set_id FROM place_names "
        "WHERE name IN ('衣裳街', '仁皇山路', '坏类别路', '无区划路')")).mappings()}
    assert set(got) == {"衣裳街", "仁皇山路"}
    assert got["衣裳街"]["romanized"] == "Yishang Jie" and got["衣裳街"]["specific_part"] == "衣裳"
    assert got["衣裳街"]["approval_ref"] == "湖政发〔2026〕1号"
    assert got["仁皇山路"]["romanized"] == "Renhuangshan Lu"
    assert len({r["change_set_id"] for r in got.values()}) == 1  # one change set
    body = rejects.read_text(encoding="utf-8")
    assert "坏类别路" in body and "category" in body and "无区划路" in body
    again, _ = _load(conn, path, tmp_path)
    assert again.inserted == 0 and again.updated == 0 and again.unchanged == 2  # idempotent


def test_should_reject_parts_that_do_not_spell_the_name(conn, tmp_path):
    path = tmp_path / "parts.csv"
    path.write_text("name,category,township_code,specific_part,generic_part\n"
                    "景山后街,road,330502003,景山,后街\n"
                    "景山前街,road,330502003,景山,街\n", encoding="utf-8")
    report, rejects = _load(conn, path, tmp_path)
    assert report.inserted == 1 and report.rejected == 1
    assert "specific_part" in rejects.read_text(encoding="utf-8")
    assert conn.execute(text("SELECT romanized FROM place_names WHERE name = '景山后街'")).scalar() == "Jingshan Houjie"
