"""Each validation rule with a bad package (edited with pyogrio, never the project's writer):
the problem names the layer, the feature and the rule, every problem is reported, and a bad
package leaves the registry unchanged."""
from __future__ import annotations

import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from loaders.field_package import read_package, write_package
from registry.inspection import export_package, propose_package

from . import edit
from .conftest import ROUND, township_line
from .helpers import export


@pytest.fixture()
def line(cconn):
    return township_line(cconn)


@pytest.fixture()
def gpkg(cconn, line, tmp_path):
    return export(cconn, line, tmp_path / "field.gpkg")


def _problems(cconn, path):
    before = cconn.execute(text("SELECT count(*) FROM change_sets")).scalar()
    result = propose_package(cconn, read_package(path), ROUND, actor="editor-a")
    assert cconn.execute(text("SELECT count(*) FROM change_sets")).scalar() == before, "a bad package wrote something"
    assert result.change_set_id is None
    return result.problems


def _rules(problems):
    return {p.rule for p in problems}


def _edit_markers(path, fn):
    frame = edit.read(path, "markers")
    frame = fn(frame) if fn(frame) is not None else frame
    edit.write(path, "markers", frame)


def _set(path, layer, row, column, value):
    frame = edit.read(path, layer)
    frame.loc[row, column] = value
    edit.write(path, layer, frame)
    return frame


def test_should_name_the_layer_feature_and_rule_of_a_missing_required_attribute(cconn, gpkg):
    frame = _set(gpkg, "markers", 1, "condition", None)
    (p,) = [p for p in _problems(cconn, gpkg) if p.rule == "required"]
    assert p.layer == "markers" and p.feature.startswith("#2") and frame["number"][1] in p.feature
    assert "condition" in p.message


def test_should_refuse_a_value_outside_the_value_list(cconn, gpkg):
    _set(gpkg, "markers", 0, "condition", "broken")
    assert "bad_value" in _rules(_problems(cconn, gpkg))


def test_should_refuse_a_malformed_marker_number(cconn, gpkg):
    _set(gpkg, "markers", 0, "number", "JZ-001")
    assert "marker_number_format" in _rules(_problems(cconn, gpkg))


def test_should_refuse_a_number_that_disagrees_with_its_line(cconn, gpkg):
    frame = edit.read(gpkg, "markers")
    num = frame["number"][0]
    other = ("1" if num[0] != "1" else "2") + num[1:]
    _set(gpkg, "markers", 0, "number", other)
    assert "marker_number_format" in _rules(_problems(cconn, gpkg))


def test_should_refuse_two_markers_with_one_number(cconn, gpkg):
    frame = edit.read(gpkg, "markers")
    _set(gpkg, "markers", 1, "number", frame["number"][0])
    problems = [p for p in _problems(cconn, gpkg) if p.rule == "marker_number_duplicate"]
    assert problems and problems[0].feature.startswith("#2")


def test_should_refuse_a_duplicated_feature(cconn, gpkg):
    frame = edit.read(gpkg, "markers")
    edit.write(gpkg, "markers", pd.concat([frame, frame.iloc[[0]]], ignore_index=True))
    assert "duplicate_feature" in _rules(_problems(cconn, gpkg))


def test_should_refuse_a_marker_far_from_its_line(cconn, gpkg):
    frame = edit.read(gpkg, "markers")
    _set(gpkg, "markers", 0, "geometry", edit.move_point(frame.geometry[0], 0, 800))
    (p,) = [p for p in _problems(cconn, gpkg) if p.rule == "marker_off_line"]
    assert p.layer == "markers" and "m" in p.message


def test_should_refuse_a_line_whose_ends_no_longer_meet_its_neighbours(cconn, gpkg):
    frame = edit.read(gpkg, "lines")
    moved = shapely.MultiLineString([[edit.offset(x, y, 0, 25) for x, y in frame.geometry[0].geoms[0].coords]])
    _set(gpkg, "lines", 0, "geometry", moved)
    assert "line_ends_moved" in _rules(_problems(cconn, gpkg))


def test_should_refuse_a_self_intersecting_line(cconn, gpkg):
    frame = edit.read(gpkg, "lines")
    coords = list(frame.geometry[0].geoms[0].coords)
    k = len(coords) // 2
    x, y = coords[k]
    d = 1e-4
    loop = [(x + d, y + d), (x + d, y - d), (x - d, y + d), (x, y)]
    _set(gpkg, "lines", 0, "geometry", shapely.MultiLineString([coords[:k + 1] + loop + coords[k + 1:]]))
    assert "self_intersection" in _rules(_problems(cconn, gpkg))


def test_should_refuse_a_line_leaving_the_area_it_bounds(cconn, gpkg):
    frame = edit.read(gpkg, "lines")
    _set(gpkg, "lines", 0, "geometry", edit.reshape_middle(frame.geometry[0], 30_000))
    assert "line_outside_area" in _rules(_problems(cconn, gpkg))


def test_should_refuse_an_unknown_division_code(cconn, gpkg):
    _set(gpkg, "markers", 0, "left_code", "330599999999")
    (p,) = [p for p in _problems(cconn, gpkg) if p.rule == "unknown_division"]
    assert "330599999999" in p.message


def test_should_refuse_an_unknown_line_id(cconn, gpkg):
    _set(gpkg, "lines", 0, "line_id", 99_999_999)
    assert "unknown_entity" in _rules(_problems(cconn, gpkg))


def test_should_refuse_a_package_exported_before_the_registry_changed(cconn, gpkg):
    mid = int(edit.read(gpkg, "markers")["marker_id"][0])
    cconn.execute(text("UPDATE boundary_markers SET material = '花岗岩（改）' WHERE id = :i"), {"i": mid})
    assert "stale_base" in _rules(_problems(cconn, gpkg))


def test_should_refuse_a_layer_without_a_crs(cconn, line, tmp_path):
    path = export(cconn, line, tmp_path / "field.shp")
    (tmp_path / "field" / "markers.prj").unlink()
    (p,) = [p for p in _problems(cconn, path) if p.rule == "crs_missing"]
    assert p.layer == "markers"


def test_should_refuse_a_crs_that_cannot_be_converted(cconn, line, tmp_path):
    path = export(cconn, line, tmp_path / "field.shp")
    (tmp_path / "field" / "lines.prj").write_text('LOCAL_CS["施工坐标系",UNIT["metre",1]]')
    assert "crs_unknown" in _rules(_problems(cconn, path))


def test_should_read_a_geojson_without_a_crs_member_as_rfc7946_wgs84(cconn, line, tmp_path):
    """RFC 7946: GeoJSON without `crs` is WGS84, which the registry takes as CGCS2000 (cm apart)."""
    import json

    path = export(cconn, line, tmp_path / "field.geojson")
    doc = json.loads(path.read_text())
    doc.pop("crs")
    path.write_text(json.dumps(doc, ensure_ascii=False))
    result = propose_package(cconn, read_package(path), ROUND, actor="editor-a")
    assert result.ok, result.problems
    assert result.counts["lines_resurveyed"] == 0


def test_should_read_a_package_in_another_known_crs(cconn, line, tmp_path):
    """A team that reprojected to a CGCS2000 Gauss-Krüger zone (EPSG:4549) still loads cleanly."""
    import pyogrio

    path = export(cconn, line, tmp_path / "field.gpkg")
    out = tmp_path / "gk.gpkg"
    for layer in ("lines", "markers", "reference_objects"):
        frame = pyogrio.read_dataframe(path, layer=layer).to_crs("EPSG:4549")
        pyogrio.write_dataframe(frame, out, layer=layer, driver="GPKG")
    for layer in ("records", "value_lists", "package_info"):
        pyogrio.write_dataframe(pyogrio.read_dataframe(path, layer=layer, read_geometry=False), out, layer=layer,
                                driver="GPKG")
    result = propose_package(cconn, read_package(out), ROUND, actor="editor-a")
    assert result.ok, result.problems
    assert result.counts["markers_moved"] == 0 and result.counts["lines_resurveyed"] == 0


def test_should_refuse_an_empty_package(cconn, gpkg):
    frame = edit.read(gpkg, "lines")
    edit.write(gpkg, "lines", frame.iloc[0:0])
    assert "empty" in _rules(_problems(cconn, gpkg))


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson"])
def test_should_refuse_a_truncated_file(cconn, line, tmp_path, suffix):
    path = export(cconn, line, tmp_path / f"field{suffix}")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert _rules(_problems(cconn, path)) & {"file_unreadable", "truncated", "empty"}


def test_should_report_every_problem_of_a_package_not_just_the_first(cconn, gpkg):
    frame = edit.read(gpkg, "markers")
    frame.loc[0, "condition"] = "broken"
    frame.loc[1, "number"] = "JZ-001"
    frame.loc[2, "left_code"] = "330599999999"
    edit.write(gpkg, "markers", frame)
    problems = _problems(cconn, gpkg)
    assert {"bad_value", "marker_number_format", "unknown_division"} <= _rules(problems)
    assert {p.feature.split()[0] for p in problems} >= {"#1", "#2", "#3"}


def test_should_write_the_problem_report_as_csv(cconn, gpkg, tmp_path):
    from loaders.field_package import write_problems_csv

    _set(gpkg, "markers", 0, "condition", "broken")
    out = write_problems_csv(_problems(cconn, gpkg), tmp_path / "field.gpkg.problems.csv")
    body = out.read_text(encoding="utf-8-sig")
    assert body.splitlines()[0] == "layer,feature,rule,message" and "bad_value" in body
