"""Every input format, encodings, coordinate systems and column mappings."""
from __future__ import annotations

import shapely
from pyproj import Transformer
from sqlalchemy import text

import pytest

from loaders.errors import FileError
from loader_helpers import IN_A, IN_B, VILLAGE_A, VILLAGE_B, addr, flat, load, write_csv, write_gis
from registry.geo import wgs84_to_gcj02

ROWS = [
    addr(number="12号"),
    addr(number="12号之1", lon=IN_A[0] + 0.0002),
    flat(),
    {"division_code": VILLAGE_B, "natural_village": "钱家浜", "group": "三组", "number": "附5号",
     "lon": IN_B[0], "lat": IN_B[1]},
]
EXPECTED = {
    "浙江省湖州市吴兴区爱山街道人民路12号",
    "浙江省湖州市吴兴区爱山街道人民路12-1号",
    "浙江省湖州市吴兴区爱山街道凤凰小区5幢2单元301室",
    "浙江省湖州市吴兴区爱山街道衣裳街社区钱家浜3组附5号",
}


def _stored(conn):
    return conn.execute(text("SELECT full_text, ST_X(geom) AS x, ST_Y(geom) AS y, code, number, group_no FROM addresses "
                             "ORDER BY id")).all()


def _check(conn, report, ordered: bool = True):
    assert report.inserted == 4 and report.rejected == 0, report.issues
    rows = _stored(conn)
    assert {r.full_text for r in rows} == EXPECTED
    first = next(r for r in rows if r.full_text.endswith("人民路12号"))
    assert first.x == pytest.approx(IN_A[0], abs=1e-9) and first.y == pytest.approx(IN_A[1], abs=1e-9)
    if ordered:  # codes follow the file's order within a village (FlatGeobuf reorders features spatially)
        assert first.code == VILLAGE_A + "00000001"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_should_load_a_csv_in_each_encoding_chinese_offices_export(conn, world, tmp_path, encoding):
    report = load(conn, write_csv(tmp_path / "in.csv", ROWS, encoding=encoding))
    _check(conn, report)


def test_should_load_a_gbk_csv_with_the_encoding_given(conn, world, tmp_path):
    report = load(conn, write_csv(tmp_path / "in.csv", ROWS, encoding="gbk"), encoding="gbk")
    _check(conn, report)


@pytest.mark.parametrize("driver,suffix", [("GPKG", ".gpkg"), ("GeoJSON", ".geojson"), ("FlatGeobuf", ".fgb"),
                                           ("ESRI Shapefile", ".shp")])
def test_should_load_each_gis_format(conn, world, tmp_path, driver, suffix):
    path = write_gis(tmp_path / f"in{suffix}", ROWS, driver=driver)
    report = load(conn, path, crs=None)  # the CRS comes from the file
    _check(conn, report, ordered=driver != "FlatGeobuf")


def test_should_read_a_shapefile_in_gbk_through_its_cpg(conn, world, tmp_path):
    path = write_gis(tmp_path / "in.shp", ROWS, driver="ESRI Shapefile", encoding="GBK")
    assert path.with_suffix(".cpg").read_text().strip().upper() in ("GBK", "CP936", "936")
    assert path.with_suffix(".prj").exists()
    report = load(conn, path, crs=None)
    _check(conn, report)


def test_should_refuse_a_shapefile_without_prj_unless_a_crs_is_given(conn, world, tmp_path):
    path = write_gis(tmp_path / "in.shp", ROWS, driver="ESRI Shapefile")
    path.with_suffix(".prj").unlink()
    with pytest.raises(FileError) as err:
        load(conn, path, crs=None)
    assert err.value.reason == "no_crs" and "--crs" in err.value.message
    _check(conn, load(conn, path, crs="EPSG:4490"))


def test_should_refuse_a_csv_without_a_crs(conn, world, tmp_path):
    with pytest.raises(FileError) as err:
        load(conn, write_csv(tmp_path / "in.csv", ROWS), crs=None)
    assert err.value.reason == "no_crs"


def test_should_take_the_crs_of_a_csv_from_a_prj_beside_it(conn, world, tmp_path):
    path = write_csv(tmp_path / "in.csv", ROWS)
    path.with_suffix(".prj").write_text('GEOGCS["China Geodetic Coordinate System 2000",DATUM["China_2000",'
                                        'SPHEROID["CGCS2000",6378137,298.257222101]],PRIMEM["Greenwich",0],'
                                        'UNIT["degree",0.0174532925199433]]')
    _check(conn, load(conn, path, crs=None))


def test_should_land_gcj02_input_on_the_right_cgcs2000_point(conn, world, tmp_path):
    gx, gy = wgs84_to_gcj02(IN_A[0], IN_A[1])
    assert abs(gx - IN_A[0]) > 0.003  # GCJ-02 is ~500 m off here
    report = load(conn, write_csv(tmp_path / "in.csv", [addr(lon=gx, lat=gy)]), crs="gcj02")
    assert report.inserted == 1, report.issues
    x, y = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM addresses")).one()
    assert x == pytest.approx(IN_A[0], abs=2e-7) and y == pytest.approx(IN_A[1], abs=2e-7)  # ~2 cm


def test_should_treat_a_gcj02_file_labelled_wgs84_as_gcj02_when_told(conn, world, tmp_path):
    gx, gy = wgs84_to_gcj02(IN_A[0], IN_A[1])
    path = write_gis(tmp_path / "amap.geojson", [addr(lon=gx, lat=gy)], driver="GeoJSON", crs="EPSG:4326")
    report = load(conn, path, crs="gcj02")
    assert report.inserted == 1 and any("GCJ-02" in n for n in report.notes)
    x, _ = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM addresses")).one()
    assert x == pytest.approx(IN_A[0], abs=2e-7)


def test_should_convert_a_projected_cgcs2000_gauss_kruger_file(conn, world, tmp_path):
    to_gk = Transformer.from_crs(4490, 4549, always_xy=True)  # CGCS2000 / 3-degree GK CM 120E
    x, y = to_gk.transform(*IN_A)
    path = write_gis(tmp_path / "gk.gpkg", [addr()], driver="GPKG", crs="EPSG:4549",
                     geometry=[shapely.Point(x, y)])
    report = load(conn, path, crs=None)
    assert report.inserted == 1, report.issues
    lon, lat = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM addresses")).one()
    assert lon == pytest.approx(IN_A[0], abs=1e-7) and lat == pytest.approx(IN_A[1], abs=1e-7)


def test_should_refuse_an_unknown_crs(conn, world, tmp_path):
    with pytest.raises(FileError) as err:
        load(conn, write_csv(tmp_path / "in.csv", ROWS), crs="EPSG:999999")
    assert err.value.reason == "unknown_crs"


def test_should_read_wkt_points_from_a_csv(conn, world, tmp_path):
    rows = [{"division_code": VILLAGE_A, "street": "人民路", "number": "7号", "wkt": f"POINT({IN_A[0]} {IN_A[1]})"}]
    report = load(conn, write_csv(tmp_path / "in.csv", rows, header=["division_code", "street", "number", "wkt"]))
    assert report.inserted == 1, report.issues


def test_should_normalize_house_number_forms(conn, world, tmp_path):
    forms = {"十二号": "12号", "12号-1": "12-1号", "14之2号": "14-2号", "16甲号": "16甲号", "附5号": "附5号", "１８号": "18号"}
    rows = [addr(number=raw, lon=IN_A[0] + i * 1e-5) for i, raw in enumerate(forms)]
    report = load(conn, write_csv(tmp_path / "in.csv", rows))
    assert report.inserted == len(forms), report.issues
    stored = [r[0] for r in conn.execute(text("SELECT number FROM addresses ORDER BY id"))]
    assert stored == list(forms.values())


MAPPING = """
[columns]
number = "门牌号码"
building = "楼栋"
unit = "单元"
room = "室号"
village = "所属社区"
compound = "小区名称"
lon = "X"
lat = "Y"

[defaults]
township = "爱山街道"

[file]
crs = "EPSG:4326"
"""


def test_should_map_an_offices_own_column_names(conn, world, tmp_path):
    header = ["所属社区", "小区名称", "楼栋", "单元", "室号", "门牌号码", "X", "Y", "备注"]
    rows = [{"所属社区": "龙庭社区", "小区名称": "凤凰小区", "楼栋": "五幢", "单元": "2", "室号": "301",
             "X": IN_A[0], "Y": IN_A[1], "备注": "新建"}]
    path = write_csv(tmp_path / "office.csv", rows, header=header, encoding="gbk")
    (tmp_path / "mapping.toml").write_text(MAPPING, encoding="utf-8")
    report = load(conn, path, crs=None, mapping=tmp_path / "mapping.toml")
    assert report.inserted == 1, report.issues
    assert conn.execute(text("SELECT full_text FROM addresses")).scalar_one() == "浙江省湖州市吴兴区爱山街道凤凰小区5幢2单元301室"
    assert any("备注" in n for n in report.notes)


def test_should_recognise_common_chinese_column_names_without_a_mapping(conn, world, tmp_path):
    header = ["区划代码", "街路巷", "门牌号", "经度", "纬度"]
    rows = [{"区划代码": VILLAGE_A, "街路巷": "人民路", "门牌号": "8号", "经度": IN_A[0], "纬度": IN_A[1]}]
    report = load(conn, write_csv(tmp_path / "in.csv", rows, header=header))
    assert report.inserted == 1, report.issues


def test_should_refuse_a_mapping_naming_a_column_the_file_lacks(conn, world, tmp_path):
    (tmp_path / "mapping.toml").write_text('[columns]\nnumber = "门牌"\n', encoding="utf-8")
    with pytest.raises(FileError) as err:
        load(conn, write_csv(tmp_path / "in.csv", ROWS), mapping=tmp_path / "mapping.toml")
    assert err.value.reason == "bad_mapping" and "门牌" in err.value.message


def test_should_refuse_a_mapping_with_an_unknown_field(conn, world, tmp_path):
    (tmp_path / "mapping.toml").write_text('[columns]\nfloor = "楼层"\n', encoding="utf-8")
    with pytest.raises(FileError) as err:
        load(conn, write_csv(tmp_path / "in.csv", ROWS), mapping=tmp_path / "mapping.toml")
    assert err.value.reason == "bad_mapping" and "floor" in err.value.message


def test_should_refuse_a_file_without_a_division_column(conn, world, tmp_path):
    path = write_csv(tmp_path / "in.csv", [{"street": "人民路", "number": "1号", "lon": 1, "lat": 2}],
                     header=["street", "number", "lon", "lat"])
    with pytest.raises(FileError) as err:
        load(conn, path)
    assert err.value.reason == "missing_columns" and "division_code" in err.value.message


def test_should_write_the_original_attributes_and_geometry_of_refused_features(conn, world, tmp_path):
    import csv as _csv

    rows = [addr(number="1号"), addr(number="无号")]
    path = write_gis(tmp_path / "in.gpkg", rows, driver="GPKG")
    report = load(conn, path, crs=None, reject_file=tmp_path / "rejects.csv")
    assert report.inserted == 1 and report.rejected == 1
    with open(tmp_path / "rejects.csv", encoding="utf-8-sig", newline="") as f:
        (row,) = list(_csv.DictReader(f))
    assert row["row"] == "2" and row["reason"] == "bad_number" and row["number"] == "无号"
    assert row["geometry_wkt"].startswith("POINT (120.025")
