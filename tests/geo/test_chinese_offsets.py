"""The GCJ-02 ⇄ CGCS2000/WGS84 converter against the reference conversion, and BD-09."""
import json
from pathlib import Path

import numpy as np
import pytest

from registry.geo import bd09_to_gcj02, gcj02_to_bd09, gcj02_to_wgs84, transform_coords, wgs84_to_gcj02

REF = Path(__file__).resolve().parents[2] / "data" / "reference"


def _vertices(feature):
    return np.array([p for poly in feature["geometry"]["coordinates"] for ring in poly for p in ring])


def _metres(dlon, dlat, lat=30.8):
    return np.hypot(dlon * 111320 * np.cos(np.radians(lat)), dlat * 110540)


@pytest.fixture(scope="module")
def counties():
    gcj = json.loads((REF / "huzhou_counties_gcj02.geojson").read_text(encoding="utf-8"))["features"]
    wgs = json.loads((REF / "huzhou_counties_wgs84.geojson").read_text(encoding="utf-8"))["features"]
    return gcj, wgs


def test_should_agree_with_the_reference_wgs84_polygons_within_two_metres(counties):
    gcj, wgs = counties
    for g, w in zip(gcj, wgs):
        a, b = _vertices(g), _vertices(w)
        lon, lat = gcj02_to_wgs84(a[:, 0], a[:, 1])
        err = _metres(lon - b[:, 0], lat - b[:, 1])
        assert err.max() < 2.0, (g["properties"]["name"], err.max())


def test_should_keep_shared_county_edges_identical_after_conversion(counties):
    gcj, _ = counties
    by_code = {f["properties"]["code"]: _vertices(f) for f in gcj}
    wuxing, nanxun = by_code["330502"], by_code["330503"]
    shared = {tuple(p) for p in wuxing} & {tuple(p) for p in nanxun}
    assert len(shared) > 10  # they are neighbours
    conv_a = {tuple(p): tuple(np.column_stack(gcj02_to_wgs84(wuxing[:, 0], wuxing[:, 1]))[i])
              for i, p in enumerate(map(tuple, wuxing))}
    conv_b = {tuple(p): tuple(np.column_stack(gcj02_to_wgs84(nanxun[:, 0], nanxun[:, 1]))[i])
              for i, p in enumerate(map(tuple, nanxun))}
    assert all(conv_a[p] == conv_b[p] for p in shared)


def test_should_round_trip_wgs84_through_gcj02_to_a_millimetre():
    lon, lat = np.array([120.0865, 119.68, 120.43]), np.array([30.8936, 30.64, 30.87])
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert _metres(back[0] - lon, back[1] - lat).max() < 0.001


def test_should_shift_huzhou_by_hundreds_of_metres_into_gcj02():
    g = wgs84_to_gcj02(120.0865, 30.8936)
    assert 200 < _metres(g[0] - 120.0865, g[1] - 30.8936) < 800


def test_should_round_trip_bd09():
    lon, lat = 120.0912, 30.8910
    back = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert _metres(back[0] - lon, back[1] - lat) < 0.01


def test_should_name_an_unknown_coordinate_system():
    with pytest.raises(ValueError, match="mercator"):
        transform_coords(120.0, 30.0, "wgs84", "mercator")


def test_should_convert_a_vertex_identically_whatever_it_is_converted_with():
    alone = gcj02_to_wgs84(np.array([120.1]), np.array([30.9]))
    batch = gcj02_to_wgs84(np.array([120.1, 119.5, 121.9]), np.array([30.9, 30.4, 31.4]))
    assert alone[0][0] == batch[0][0] and alone[1][0] == batch[1][0]
