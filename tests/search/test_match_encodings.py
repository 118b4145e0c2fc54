"""Batch matching of agencies' lists as Excel writes them: GBK/GB18030 or UTF-8 in, UTF-8 with a
BOM out (Excel reads it right), each row counted once by its status; bad input refused in one
line (`registry match`, exit 2) or as a 400 problem naming the line (`POST /v1/match`)."""
from __future__ import annotations

import codecs
import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loaders.cli import app
from registry.keys import create_key
from registry.settings import get_settings

WX_123 = "浙江省湖州市吴兴区爱山街道人民路123号"
WX_12_1 = "浙江省湖州市吴兴区爱山街道人民路12-1号"
ROWS = ["吴兴区爱山街道人民路123号",  # matched
        "吴兴区人民路12号之1",         # matched (a sub-number)
        "吴兴区爱山街道人民路999号",   # partial: the street exists, the number does not
        "人民路123号",                # ambiguous: 人民路123号 in three counties
        "火星基地99号"]               # no such place


def _write_csv(path: Path, rows: list[str], encoding: str, column: str = "地址") -> Path:
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(["编号", column])
        w.writerows([[i, r] for i, r in enumerate(rows, start=1)])
    return path


@pytest.fixture()
def runner(database_url, monkeypatch, town, engine):
    """`registry` on the session database, matching against the town's gazetteer (the town lives
    in a transaction the CLI's own connection cannot see)."""
    monkeypatch.setenv("REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setattr("registry.search.cli.load_gazetteer", lambda conn: town.gaz)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _read_out(path: Path, encoding: str = "utf-8-sig") -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode(encoding))))


# --- registry match -------------------------------------------------------------------------------------
def test_should_match_a_gbk_list_and_write_utf8_with_a_bom(runner, tmp_path, town):
    infile = _write_csv(tmp_path / "卫健委.csv", ROWS, "gbk")
    assert infile.read_bytes() != infile.read_text(encoding="gbk").encode("utf-8")  # really GBK bytes
    result = runner.invoke(app, ["match", str(infile), "--column", "地址", "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    raw = (tmp_path / "out.csv").read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    out = _read_out(tmp_path / "out.csv")
    assert [r["地址"] for r in out] == ROWS and [r["编号"] for r in out] == ["1", "2", "3", "4", "5"]
    assert out[0]["address"] == WX_123 and int(out[0]["id"]) == town.ids["renmin_wx_123"]
    assert out[1]["address"] == WX_12_1
    assert [r["status"] for r in out] == ["matched", "matched", "partial", "ambiguous", out[4]["status"]]
    assert out[4]["status"] in ("unmatched", "low_confidence")


def test_should_count_partial_ambiguous_and_unmatched_rows_apart_from_matched(runner, tmp_path):
    infile = _write_csv(tmp_path / "in.csv", ROWS, "gbk")
    result = runner.invoke(app, ["match", str(infile), "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    summary = result.stdout.strip().splitlines()[-1]
    assert "5 行 / rows" in summary and "matched 2," in summary and "partial 1," in summary
    assert "ambiguous 1," in summary
    statuses = [r["status"] for r in _read_out(tmp_path / "out.csv")]
    assert f"low-confidence {statuses.count('low_confidence')}," in summary
    assert f"unmatched {statuses.count('unmatched')} " in summary


def test_should_read_with_the_encoding_given_and_write_plain_utf8_without_bom(runner, tmp_path):
    infile = _write_csv(tmp_path / "in.csv", ROWS[:2], "gb18030")
    result = runner.invoke(app, ["match", str(infile), "--encoding", "gb18030", "--no-bom",
                                 "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    raw = (tmp_path / "out.csv").read_bytes()
    assert not raw.startswith(codecs.BOM_UTF8)
    assert [r["address"] for r in _read_out(tmp_path / "out.csv", "utf-8")] == [WX_123, WX_12_1]


def test_should_write_gb18030_when_asked(runner, tmp_path):
    infile = _write_csv(tmp_path / "in.csv", ROWS[:1], "utf-8-sig")
    result = runner.invoke(app, ["match", str(infile), "--output-encoding", "gb18030", "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == 0, result.output
    assert _read_out(tmp_path / "o.csv", "gb18030")[0]["address"] == WX_123


def test_should_refuse_utf8_named_for_a_gbk_file_naming_the_line(runner, tmp_path):
    infile = _write_csv(tmp_path / "in.csv", ROWS[:2], "gbk")
    result = runner.invoke(app, ["match", str(infile), "--encoding", "utf-8"])
    assert result.exit_code == 2
    assert "第 1 行" in result.stderr and "line 1 is not valid utf-8" in result.stderr  # the header is Chinese
    assert not (tmp_path / "in.matched.csv").exists()


def _bad_inputs(tmp_path: Path) -> dict[str, list[str]]:
    (tmp_path / "empty.csv").write_bytes(b"")
    _write_csv(tmp_path / "named.csv", ROWS[:1], "utf-8", column="名称")
    (tmp_path / "header.csv").write_text("编号,地址\n", encoding="utf-8")
    return {
        "directory": [str(tmp_path)],
        "missing file": [str(tmp_path / "nope.csv")],
        "empty file": [str(tmp_path / "empty.csv")],
        "no such column": [str(tmp_path / "named.csv"), "--column", "地址"],
        "no rows": [str(tmp_path / "header.csv")],
        "unknown encoding": [str(tmp_path / "named.csv"), "--column", "名称", "--encoding", "latin-9x"],
        "output encoding": [str(tmp_path / "named.csv"), "--column", "名称", "--output-encoding", "big5"],
    }


@pytest.mark.parametrize("case", ["directory", "missing file", "empty file", "no such column", "no rows",
                                  "unknown encoding", "output encoding"])
def test_should_refuse_bad_input_in_one_line_and_exit_2(runner, tmp_path, case):
    result = runner.invoke(app, ["match", *_bad_inputs(tmp_path)[case]])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("错误 / error:") and " / " in lines[0]
    assert "Traceback" not in result.output


def test_should_not_print_a_traceback_for_a_directory(tmp_path, database_url):
    """The real process, not the test runner: what a user sees for `registry match DIR`."""
    env = {"PATH": "/usr/bin:/bin", "REGISTRY_DATABASE_URL": database_url, "HOME": str(tmp_path)}
    res = subprocess.run([str(Path(sys.executable).with_name("registry")), "match", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "is a directory" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


# --- POST /v1/match -------------------------------------------------------------------------------------
@pytest.fixture()
def agency_key(town):
    return create_key(town.conn, agency="湖州市卫生健康委员会", scopes=["agency"]).secret


def _body(rows: list[str], encoding: str) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["编号", "地址"])
    w.writerows([[i, r] for i, r in enumerate(rows, start=1)])
    return buf.getvalue().encode(encoding)


@pytest.mark.parametrize("ctype", ["text/csv; charset=gbk", "text/csv; charset=GB18030", 'text/csv; charset="gbk"',
                                   "text/csv"])
def test_should_match_a_gbk_body_by_its_charset_or_detected(town_client, agency_key, ctype):
    res = town_client.post("/v1/match", content=_body(ROWS, "gbk"),
                           headers={"Content-Type": ctype, "X-API-Key": agency_key})
    assert res.status_code == 200, res.text
    out = list(csv.DictReader(io.StringIO(res.text)))
    assert [r["input"] for r in out] == ROWS
    assert [r["address"] for r in out[:2]] == [WX_123, WX_12_1]
    assert [r["status"] for r in out[:4]] == ["matched", "matched", "partial", "ambiguous"]


def test_should_answer_the_counts_per_status_as_json(town_client, agency_key):
    res = town_client.post("/v1/match", params={"format": "json"}, content=_body(ROWS, "gbk"),
                           headers={"Content-Type": "text/csv; charset=gbk", "X-API-Key": agency_key})
    assert res.status_code == 200, res.text
    body = res.json()
    statuses = [r["status"] for r in body["results"]]
    assert body["rows"] == 5 and sum(body["counts"].values()) == 5
    assert body["counts"]["matched"] == 2 and body["counts"]["partial"] == 1 and body["counts"]["ambiguous"] == 1
    assert body["counts"] == {s: statuses.count(s) for s in body["counts"]}
    assert body["results"][0]["address"] == WX_123


@pytest.mark.parametrize("body,ctype,line", [
    (_body(ROWS[:2], "utf-8") + "3,吴兴区".encode("gbk") + b"\xff\n", "text/csv", 4),
    (_body(ROWS[:2], "gbk"), "text/csv; charset=utf-8", 1),
])
def test_should_refuse_undecodable_bytes_naming_the_line(town_client, agency_key, body, ctype, line):
    res = town_client.post("/v1/match", content=body, headers={"Content-Type": ctype, "X-API-Key": agency_key})
    assert res.status_code == 400
    problem = res.json()
    assert res.headers["content-type"].startswith("application/problem+json")
    assert problem["parameter"] == "body" and problem["line"] == line
    assert f"第 {line} 行" in problem["detail"] and f"line {line}" in problem["detail"]


def test_should_refuse_an_unknown_charset_naming_it(town_client, agency_key):
    res = town_client.post("/v1/match", content=_body(ROWS[:1], "utf-8"),
                           headers={"Content-Type": "text/csv; charset=klingon", "X-API-Key": agency_key})
    assert res.status_code == 400 and res.json()["parameter"] == "charset" and "klingon" in res.json()["detail"]
