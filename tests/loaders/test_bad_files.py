"""Files that cannot be loaded end with a clear error (Chinese and English, a stable reason) and
leave the registry exactly as it was."""
from __future__ import annotations

import pytest

from loaders.errors import FileError
from loader_helpers import IN_A, ROWS_OK, addr, load, registry_state, write_csv, write_gis

TWO_GB = 2 * 1024 ** 3


def _refused(conn, path, reason, **kw):
    before = registry_state(conn)
    with pytest.raises(FileError) as err:
        load(conn, path, **kw)
    assert err.value.reason == reason, err.value.message
    assert " / " in err.value.message  # Chinese / English
    assert registry_state(conn) == before
    return err.value


def test_should_refuse_a_truncated_geopackage(conn, world, tmp_path):
    path = write_gis(tmp_path / "in.gpkg", ROWS_OK * 200, driver="GPKG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    err = _refused(conn, path, "unreadable_file", crs=None)
    assert "in.gpkg" in err.message


def test_should_refuse_a_shapefile_without_prj(conn, world, tmp_path):
    path = write_gis(tmp_path / "in.shp", ROWS_OK, driver="ESRI Shapefile")
    path.with_suffix(".prj").unlink()
    err = _refused(conn, path, "no_crs", crs=None)
    assert "--crs" in err.message


def test_should_refuse_a_csv_with_a_broken_quote_after_loading_began(conn, world, tmp_path):
    path = tmp_path / "in.csv"
    good = [addr(number=f"{n}号", lon=IN_A[0] + n * 1e-5) for n in range(1, 2000)]
    write_csv(path, good)
    with open(path, "a", encoding="utf-8") as f:
        f.write(f'330502003003,人民路,,,,"9999号,,,,{IN_A[0]},{IN_A[1]}\n')
        for n in range(3000, 3100):
            f.write(f"330502003003,人民路,,,,{n}号,,,,{IN_A[0]},{IN_A[1]}\n")
    err = _refused(conn, path, "malformed_csv")
    assert "2001" in err.message  # where the broken record starts


def test_should_refuse_an_empty_file(conn, world, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    _refused(conn, path, "empty_file")


def test_should_refuse_a_file_with_a_header_and_no_rows(conn, world, tmp_path):
    _refused(conn, write_csv(tmp_path / "header.csv", []), "empty_file")


def test_should_refuse_a_two_gigabyte_line_without_reading_it_into_memory(conn, world, tmp_path):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as f:  # a sparse file: 2 GB on paper, a few KB on disk
        f.write("division_code,street,number,lon,lat\n".encode())
        f.write(b"330502003003," + b"x" * 8000)
        f.truncate(TWO_GB)
    assert path.stat().st_size == TWO_GB
    err = _refused(conn, path, "line_too_long")
    assert "2" in err.message and "1024 KB" in err.message


def test_should_refuse_a_binary_file_named_csv(conn, world, tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 10)
    _refused(conn, path, "malformed_csv")


def test_should_refuse_text_in_the_wrong_declared_encoding(conn, world, tmp_path):
    path = write_csv(tmp_path / "gbk.csv", ROWS_OK, encoding="gbk")
    _refused(conn, path, "bad_encoding", encoding="utf-8")


def test_should_refuse_an_unknown_format_and_a_missing_file(conn, world, tmp_path):
    other = tmp_path / "in.docx"
    other.write_bytes(b"PK")
    _refused(conn, other, "unsupported_format")
    damaged = tmp_path / "in.xlsx"  # a spreadsheet is read (GDAL's XLSX driver), a broken one refused
    damaged.write_bytes(b"PK")
    _refused(conn, damaged, "unreadable_file")
    _refused(conn, tmp_path / "nowhere.csv", "file_not_found")


def test_should_ask_for_a_layer_when_a_geopackage_has_several(conn, world, tmp_path):
    path = write_gis(tmp_path / "two.gpkg", ROWS_OK, driver="GPKG", layer="门牌一")
    write_gis(path, ROWS_OK, driver="GPKG", layer="门牌二")
    err = _refused(conn, path, "no_layer", crs=None)
    assert "门牌一" in err.message and "--layer" in err.message
    assert load(conn, path, crs=None, layer="门牌二").inserted == 1
