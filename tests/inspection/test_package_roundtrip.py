"""A package exported, edited with GDAL (pyogrio) and loaded back gives the expected diff."""
from __future__ import annotations

import pytest
import shapely
from sqlalchemy import text

from loaders.field_package import read_package, write_package
from registry.inspection import export_package, propose_package
from . import edit
from .conftest import ROUND, township_line


@pytest.fixture()
def line(cconn):
    return township_line(cconn)


def _export(cconn, line, path):
    pkg = export_package(cconn, ROUND, line_code=line["code"])
    write_package(pkg, path)
    return path


def test_should_export_a_geopackage_with_the_four_layers_in_cgcs2000(cconn, line, tmp_path):
    import pyogrio

    path = _export(cconn, line, tmp_path / "field.gpkg")
    layers = {str(n) for n, _ in pyogrio.list_layers(path)}
    assert {"lines", "markers", "reference_objects", "records", "value_lists"} <= layers
    assert pyogrio.read_info(path, layer="markers")["crs"] == "EPSG:4490"
    markers = edit.read(path, "markers")
    assert {"marker_id", "marker_ver", "number", "condition"} <= set(markers.columns)
    assert len(markers) >= 3


def test_should_write_chinese_aliases_and_value_lists_into_the_geopackage(cconn, line, tmp_path):
    import sqlite3

    path = _export(cconn, line, tmp_path / "field.gpkg")
    db = sqlite3.connect(path)
    alias = db.execute("SELECT name FROM gpkg_data_columns WHERE table_name='markers' AND column_name='number'").fetchone()
    values = {r[0] for r in db.execute(
        "SELECT value FROM gpkg_data_column_constraints WHERE constraint_name='condition'")}
    db.close()
    assert alias == ("界桩编号",)
    assert values == {"intact", "damaged", "worn", "missing", "displaced", "new"}


def test_should_read_back_an_unedited_package_as_an_empty_diff(cconn, line, tmp_path):
    path = _export(cconn, line, tmp_path / "field.gpkg")
    result = propose_package(cconn, read_package(path), ROUND, actor="editor-a")
    assert result.ok, result.problems
    assert result.counts["lines_resurveyed"] == 0 and result.counts["markers_moved"] == 0
    assert result.counts["markers_added"] == 0 and result.counts["markers_removed"] == 0


@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".geojson"])
def test_should_round_trip_every_format_without_changes(cconn, line, tmp_path, suffix):
    path = _export(cconn, line, tmp_path / f"field{suffix}")
    result = propose_package(cconn, read_package(path), ROUND, actor="editor-a")
    assert result.ok, result.problems
    assert result.counts["lines_resurveyed"] == 0 and result.counts["markers_moved"] == 0


def _edited(cconn, line, tmp_path, *, north_m=25.0, move_m=30.0):
    path = _export(cconn, line, tmp_path / "field.gpkg")
    markers = edit.read(path, "markers")
    markers.loc[0, "geometry"] = edit.move_point(markers.geometry[0], move_m)
    markers.loc[0, "condition"] = "displaced"
    edit.write(path, "markers", markers)
    lines = edit.read(path, "lines")
    old = lines.geometry[0]
    lines.loc[0, "geometry"] = edit.reshape_middle(old, north_m)
    edit.write(path, "lines", lines)
    return path, old, lines.geometry[0], markers


def test_should_report_a_moved_marker_and_a_resurveyed_line_with_the_area_changing_hands(cconn, line, tmp_path):
    path, old, new, markers = _edited(cconn, line, tmp_path)
    result = propose_package(cconn, read_package(path), ROUND, actor="editor-a")
    assert result.ok, result.problems
    moved = [m for m in result.diff["markers"] if "moved_m" in m]
    assert len(moved) == 1 and moved[0]["number"] == markers["number"][0]
    assert moved[0]["moved_m"] == pytest.approx(30.0, abs=0.5)
    assert moved[0]["condition"][1] == "displaced"
    (changed,) = result.diff["lines"]
    expected = edit.area_between(old, new)
    got = changed["area_to_left_m2"] + changed["area_to_right_m2"]
    assert got == pytest.approx(expected, rel=0.01)


def test_should_list_the_addresses_that_fall_on_the_other_side(cconn, line, tmp_path):
    path, old, new, _ = _edited(cconn, line, tmp_path)
    face = max(edit.faces_between(old, new), key=lambda f: f.area)
    p = face.representative_point()
    village = cconn.execute(text("""
        SELECT v.id, v.nbs_code FROM divisions v WHERE v.level = 'village' AND v.status = 'active'
          AND ST_Contains(v.geom, ST_SetSRID(ST_MakePoint(:x, :y), 4490))"""), {"x": p.x, "y": p.y}).one()
    aid = cconn.execute(text("""
        INSERT INTO addresses (division_id, number, full_text, code, local_seq, geom)
        VALUES (:v, '999号', '测试地址999号', :code, 99999, ST_SetSRID(ST_MakePoint(:x, :y), 4490)) RETURNING id
    """), {"v": village.id, "code": f"{village.nbs_code}00099999", "x": p.x, "y": p.y}).scalar_one()
    result = propose_package(cconn, read_package(path), ROUND, actor="editor-a")
    assert result.ok, result.problems
    listed = {a["id"]: a for a in result.diff["lines"][0]["addresses"]}
    assert aid in listed
    assert listed[aid]["from_village_id"] == village.id and listed[aid]["to_village_id"] != village.id


def test_should_change_nothing_but_the_proposed_change_set(cconn, line, tmp_path):
    path, *_ = _edited(cconn, line, tmp_path)
    before = cconn.execute(text("SELECT ST_AsEWKB(geom) FROM boundary_lines WHERE id = :i"), {"i": line["id"]}).scalar()
    result = propose_package(cconn, read_package(path), ROUND, actor="editor-a")
    status = cconn.execute(text("SELECT status, kind FROM change_sets WHERE id = :i"), {"i": result.change_set_id}).one()
    assert tuple(status) == ("proposed", "inspection")
    after = cconn.execute(text("SELECT ST_AsEWKB(geom) FROM boundary_lines WHERE id = :i"), {"i": line["id"]}).scalar()
    assert bytes(before) == bytes(after)


def test_should_return_the_open_change_set_when_the_same_file_is_loaded_again(cconn, line, tmp_path):
    path, *_ = _edited(cconn, line, tmp_path)
    first = propose_package(cconn, read_package(path), ROUND, actor="editor-a")
    again = propose_package(cconn, read_package(path), ROUND, actor="editor-a")
    assert again.existing and again.change_set_id == first.change_set_id


@pytest.mark.skipif(__import__("shutil").which("ogr2ogr") is None, reason="GDAL command-line tools not installed")
def test_should_load_a_package_rewritten_by_ogr2ogr_and_edited_with_ogrinfo_sql(cconn, line, tmp_path):
    import subprocess

    src = _export(cconn, line, tmp_path / "field.gpkg")
    out = tmp_path / "by-gdal.gpkg"
    subprocess.run(["ogr2ogr", "-f", "GPKG", str(out), str(src)], check=True, capture_output=True)
    number = edit.read(src, "markers")["number"][1]
    subprocess.run(["ogrinfo", str(out), "-sql", f"UPDATE markers SET condition = 'damaged' WHERE number = '{number}'"],
                   check=True, capture_output=True)
    result = propose_package(cconn, read_package(out), ROUND, actor="editor-a")
    assert result.ok, result.problems
    changed = {m["number"]: m for m in result.diff["markers"]}
    assert changed[number]["condition"][1] == "damaged" and "moved_m" not in changed[number]
