"""Exports of the published collections: every format opened back with pyogrio (row count, CRS,
Chinese attributes intact), Shapefiles with .prj and .cpg, GBK on request, CSV with a BOM, a
division, an as-of date and another CRS; `registry export` and GET /v1/exports/{collection}."""
from __future__ import annotations

import io
import zipfile

import pyogrio
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from loaders.export_cli import write_export
from registry.errors import InvalidQuery, NotFound
from registry.exports import plan_export
from registry.settings import get_settings

TOWNSHIP = "330502003"  # NBS and MCA agree on this township code


@pytest.fixture()
def doors(conn, township_address):
    ids = [township_address(TOWNSHIP, n, street="爱山路") for n in range(1, 13)]
    ids += [township_address("330503100", n, street="𬇙塘路") for n in range(1, 4)]  # 南浔区 练市镇; 𬇙 (CJK Ext. E) is not in GBK
    return ids


def _active(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM addresses WHERE status = 'active'")).scalar_one()


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "geojson", "fgb"])
def test_should_write_each_format_so_that_it_reads_back_with_count_crs_and_chinese_intact(conn, doors, tmp_path, fmt):
    path = tmp_path / f"addresses.{fmt}"
    n = write_export(conn, plan_export(conn, "addresses"), fmt, path)
    assert n == _active(conn) == len(doors)
    df = pyogrio.read_dataframe(path)
    assert len(df) == n
    assert df.crs.to_epsg() == 4490
    full = conn.execute(text("SELECT full_text FROM addresses WHERE id = :i"), {"i": doors[0]}).scalar_one()
    address_col = "address"
    assert full in set(df[address_col]) and "爱山路" in full
    assert any("𬇙塘路" in a for a in df[address_col])
    assert df.geometry.x.between(118, 122).all() and df.geometry.y.between(29, 32).all()  # lon in x


def test_should_write_a_shapefile_with_prj_and_a_utf8_cpg_and_gbk_on_request(conn, township_address, tmp_path):
    for n in range(1, 4):
        township_address(TOWNSHIP, n, street="爱山路")
    utf = tmp_path / "utf" / "a.shp"
    utf.parent.mkdir()
    write_export(conn, plan_export(conn, "addresses"), "shp", utf)
    assert utf.with_suffix(".prj").exists() and "CGCS" in utf.with_suffix(".prj").read_text()
    assert utf.with_suffix(".cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
    gbk = tmp_path / "gbk" / "a.shp"
    gbk.parent.mkdir()
    write_export(conn, plan_export(conn, "addresses"), "shp", gbk, encoding="gbk")
    assert gbk.with_suffix(".cpg").read_text().strip().upper() in ("CP936", "936", "GBK")
    assert "爱山路".encode("gbk") in gbk.with_suffix(".dbf").read_bytes()
    assert "爱山路".encode("utf-8") not in gbk.with_suffix(".dbf").read_bytes()
    df = pyogrio.read_dataframe(gbk)  # GDAL reads the .cpg
    assert all("爱山路" in a for a in df["address"])


def test_should_write_csv_in_utf8_with_a_bom_by_default_and_gbk_on_request(conn, township_address, tmp_path):
    for n in range(1, 4):
        township_address(TOWNSHIP, n, street="爱山路")
    path = tmp_path / "a.csv"
    assert write_export(conn, plan_export(conn, "addresses"), "csv", path) == 3
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and "爱山路".encode() in raw
    df = pyogrio.read_dataframe(path, X_POSSIBLE_NAMES="lon", Y_POSSIBLE_NAMES="lat", KEEP_GEOM_COLUMNS="NO")
    assert len(df) == 3 and df.geometry.x.between(118, 122).all()
    gbk = tmp_path / "gbk.csv"
    write_export(conn, plan_export(conn, "addresses"), "csv", gbk, encoding="gbk")
    assert "爱山路" in gbk.read_bytes().decode("gbk").splitlines()[1] and not gbk.read_bytes().startswith(b"\xef\xbb\xbf")
    assert len(pyogrio.read_dataframe(gbk, encoding="gbk", X_POSSIBLE_NAMES="lon", Y_POSSIBLE_NAMES="lat")) == 3


def test_should_refuse_gbk_for_a_character_gbk_lacks_naming_it(conn, doors, tmp_path):
    with pytest.raises(InvalidQuery) as err:
        write_export(conn, plan_export(conn, "addresses"), "csv", tmp_path / "x.csv", encoding="gbk")
    assert err.value.parameter == "encoding" and "𬇙" in err.value.message


def test_should_export_one_division_as_of_a_date_in_another_crs(conn, doors, tmp_path):
    in_township = plan_export(conn, "addresses", division=TOWNSHIP)
    assert in_township.count(conn) == 12
    a = doors[0]
    conn.execute(text("SELECT set_config('registry.valid_time', '2030-01-01T00:00:00+08:00', true)"))
    conn.execute(text("UPDATE addresses SET full_text = '改后的地址' WHERE id = :i"), {"i": a})
    path = tmp_path / "then.gpkg"
    write_export(conn, plan_export(conn, "addresses", division=TOWNSHIP, as_of="2029-06-01", crs="EPSG:4549"),
                 "gpkg", path)
    df = pyogrio.read_dataframe(path)
    assert len(df) == 12 and "改后的地址" not in set(df["address"])
    assert df.crs.to_epsg() == 4549 and df.geometry.x.between(3e5, 7e5).all()  # Gauss-Krüger metres, 120°E
    now = tmp_path / "now.geojson"
    write_export(conn, plan_export(conn, "addresses", division=TOWNSHIP), "geojson", now)
    assert "改后的地址" in set(pyogrio.read_dataframe(now)["address"])


def test_should_refuse_a_bad_collection_format_crs_or_date(conn):
    with pytest.raises(NotFound):
        plan_export(conn, "nowhere")
    for kwargs, parameter in (({"crs": "EPSG:999999"}, "crs"), ({"crs": "mercator"}, "crs"),
                              ({"as_of": "last year"}, "as_of"), ({"division": "12"}, "division")):
        with pytest.raises(InvalidQuery) as err:
            plan_export(conn, "addresses", **kwargs)
        assert err.value.parameter == parameter
    with pytest.raises(InvalidQuery) as err:
        write_export(conn, plan_export(conn, "addresses"), "xlsx", "x.xlsx")
    assert err.value.parameter == "format"


@pytest.fixture()
def runner(database_url, monkeypatch, reference):
    monkeypatch.setenv("REGISTRY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_should_export_from_the_command_line_and_refuse_mistakes_with_exit_2(runner, tmp_path):
    from loaders.cli import app

    out = tmp_path / "counties.gpkg"
    result = runner.invoke(app, ["export", "divisions-county", "--format", "gpkg", "-o", str(out)])
    assert result.exit_code == 0, result.output
    df = pyogrio.read_dataframe(out)
    assert len(df) == 5 and "吴兴区" in set(df["name"]) and df.crs.to_epsg() == 4490
    for args in (["export", "nowhere", "-o", str(tmp_path / "x.gpkg")],
                 ["export", "addresses", "--format", "xlsx", "-o", str(tmp_path / "x.xlsx")],
                 ["export", "addresses", "--crs", "EPSG:1", "-o", str(tmp_path / "x.gpkg")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "错误 / error" in result.output


def test_should_serve_an_export_to_agency_keys_only(client, conn, township_address, tmp_path):
    from registry.keys import create_key

    for n in range(1, 4):
        township_address(TOWNSHIP, n, street="爱山路")
    assert client.get("/v1/exports/addresses?format=gpkg").status_code in (401, 403)
    key = create_key(conn, agency="公安局", scopes=["agency"]).secret
    r = client.get("/v1/exports/addresses", params={"format": "gpkg"}, headers={"X-API-Key": key})
    assert r.status_code == 200 and r.headers["content-type"] == "application/geopackage+sqlite3"
    assert r.headers["x-row-count"] == "3"
    (tmp_path / "a.gpkg").write_bytes(r.content)
    assert len(pyogrio.read_dataframe(tmp_path / "a.gpkg")) == 3
    r = client.get("/v1/exports/addresses", params={"format": "shp", "encoding": "gbk"}, headers={"X-API-Key": key})
    assert r.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert {n.rsplit(".", 1)[1] for n in names} >= {"shp", "shx", "dbf", "prj", "cpg"}
    r = client.get("/v1/exports/addresses", params={"format": "xlsx"}, headers={"X-API-Key": key})
    assert r.status_code == 400 and r.json()["parameter"] == "format"
    assert client.get("/v1/exports/nowhere", headers={"X-API-Key": key}).status_code == 404


def test_should_run_a_large_export_as_a_job_with_progress_to_poll(client, conn, engine):
    import time

    from registry.keys import create_key

    # the job runs on a connection of its own: it sees committed rows only (the reference divisions)
    key = create_key(conn, agency="自然资源局", scopes=["agency"]).secret
    h = {"X-API-Key": key}
    assert client.post("/v1/exports/divisions-county?format=gpkg").status_code in (401, 403)
    assert client.post("/v1/exports/divisions-county?format=xlsx", headers=h).status_code == 400
    assert client.post("/v1/exports/nowhere?format=gpkg", headers=h).status_code == 404
    r = client.post("/v1/exports/divisions-county", params={"format": "fgb"}, headers=h)
    assert r.status_code == 202 and r.headers["location"].endswith(f"/v1/export-jobs/{r.json()['id']}")
    for _ in range(200):
        job = client.get(r.headers["location"], headers=h).json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert job["status"] == "done", job
    assert job["rows_total"] == job["rows_written"] == 5 and job["percent"] == 100.0
    f = client.get(job["download"], headers=h)
    assert f.status_code == 200 and f.headers["content-type"] == "application/flatgeobuf"
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "c.fgb").write_bytes(f.content)
        df = pyogrio.read_dataframe(Path(d) / "c.fgb")
    assert len(df) == 5 and "吴兴区" in set(df["name"]) and df.crs.to_epsg() == 4490
    assert client.get("/v1/export-jobs/nope", headers=h).status_code == 404
