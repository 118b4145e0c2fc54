"""`registry plates issue|activate|print|reports --division` with a township code the two
authorities gave to different townships (issue 8, item 1), and `--code-authority` (item 7).

NBS 330502007 is 康山街道, MCA 330502007 is 湖东街道: without `--authority` the command exits 2
naming both; with it, it acts on that one and prints its name; an unambiguous code works as before.
The plate commands run on the test's rolled-back connection (a savepoint per command)."""
import csv

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli_engine import on_test_connection
from loaders.cli import app
from registry.doorplates import issue_plates, live_plate_for, submit_report
from registry.settings import get_settings

AMBIGUOUS = "330502007"
KANGSHAN_NBS, HUDONG_NBS = "330502007", "330502013"
AISHAN = "330502003"


@pytest.fixture()
def plates_cli(conn, monkeypatch):
    import loaders.plates_cli

    on_test_connection(monkeypatch, conn, loaders.plates_cli)
    # a public base URL, so that printing is not refused for a loopback one (issue 8, item 2)
    monkeypatch.setenv("REGISTRY_PUBLIC_BASE_URL", "https://dm.huzhou.gov.cn")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture()
def two_townships(township_address) -> dict[str, int]:
    return {"康山街道": township_address(KANGSHAN_NBS), "湖东街道": township_address(HUDONG_NBS)}


def _plates(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM doorplates")).scalar_one()


def _assert_refused_naming_both(result):
    assert result.exit_code == 2, result.output
    assert "康山街道" in result.output and "湖东街道" in result.output
    assert "--authority nbs2023" in result.output and "--authority mca2025" in result.output


# --- plates issue -------------------------------------------------------------------------------------
def test_should_refuse_an_ambiguous_township_code_when_issuing_plates(plates_cli, conn, two_townships):
    before = _plates(conn)
    _assert_refused_naming_both(plates_cli.invoke(app, ["plates", "issue", "--division", AMBIGUOUS]))
    assert _plates(conn) == before


@pytest.mark.parametrize("authority, name, other", [("nbs2023", "康山街道", "湖东街道"),
                                                    ("mca2025", "湖东街道", "康山街道")])
def test_should_issue_plates_for_the_township_the_authority_names_and_print_its_name(
        plates_cli, conn, two_townships, authority, name, other):
    result = plates_cli.invoke(app, ["plates", "issue", "--division", AMBIGUOUS, "--authority", authority])
    assert result.exit_code == 0, result.output
    assert f"{name}（{authority} {AMBIGUOUS}）" in result.output
    assert live_plate_for(conn, two_townships[name]) is not None
    assert live_plate_for(conn, two_townships[other]) is None


def test_should_issue_plates_by_an_unambiguous_code_and_print_the_division(plates_cli, conn, township_address):
    aishan = township_address(AISHAN)
    result = plates_cli.invoke(app, ["plates", "issue", "--division", AISHAN])
    assert result.exit_code == 0, result.output
    assert "爱山街道" in result.output and live_plate_for(conn, aishan) is not None


def test_should_refuse_an_unknown_authority_naming_the_valid_ones(plates_cli, conn, two_townships):
    result = plates_cli.invoke(app, ["plates", "issue", "--division", AMBIGUOUS, "--authority", "nbs"])
    assert result.exit_code == 2
    assert "--authority" in result.output and "nbs2023" in result.output and "mca2025" in result.output


def test_should_read_the_authority_in_any_case(plates_cli, conn, two_townships):
    result = plates_cli.invoke(app, ["plates", "issue", "--division", AMBIGUOUS, "--authority", "NBS2023"])
    assert result.exit_code == 0, result.output
    assert live_plate_for(conn, two_townships["康山街道"]) is not None


# --- plates activate ---------------------------------------------------------------------------------
def test_should_refuse_an_ambiguous_township_code_when_activating_plates(plates_cli, conn, two_townships):
    for address_id in two_townships.values():
        issue_plates(conn, actor="tests", address_id=address_id)
    _assert_refused_naming_both(plates_cli.invoke(app, ["plates", "activate", "--division", AMBIGUOUS]))
    assert conn.execute(text("SELECT count(*) FROM doorplates WHERE status = 'active'")).scalar_one() == 0
    result = plates_cli.invoke(app, ["plates", "activate", "--division", AMBIGUOUS, "--authority", "nbs2023"])
    assert result.exit_code == 0 and "康山街道" in result.output and "activated 1" in result.output


# --- plates print ------------------------------------------------------------------------------------
@pytest.fixture()
def issued(conn, two_townships) -> dict[str, int]:
    for address_id in two_townships.values():
        issue_plates(conn, actor="tests", address_id=address_id)
    return two_townships


def test_should_refuse_an_ambiguous_township_code_when_printing_plates(plates_cli, issued, tmp_path):
    out = tmp_path / "plates.pdf"
    _assert_refused_naming_both(plates_cli.invoke(app, ["plates", "print", "--division", AMBIGUOUS, "-o", str(out)]))
    assert not out.exists()


def test_should_print_the_plates_of_the_township_the_authority_names(plates_cli, issued, tmp_path):
    out = tmp_path / "plates.pdf"
    result = plates_cli.invoke(app, ["plates", "print", "--division", AMBIGUOUS, "--authority", "nbs2023",
                                     "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "康山街道（nbs2023 330502007）" in result.output and "1 plates" in result.output
    assert out.read_bytes().startswith(b"%PDF")


def test_should_print_by_an_unambiguous_code_and_print_the_division(plates_cli, issued, tmp_path):
    out = tmp_path / "plates.pdf"
    result = plates_cli.invoke(app, ["plates", "print", "--division", "330502", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "吴兴区" in result.output and "2 plates" in result.output


# --- plates reports ----------------------------------------------------------------------------------
@pytest.fixture()
def reported(conn, issued) -> dict[str, int]:
    return {name: submit_report(conn, live_plate_for(conn, a), "damaged", f"{name}门牌损坏")["id"]
            for name, a in issued.items()}


def test_should_refuse_an_ambiguous_township_code_when_listing_reports(plates_cli, reported):
    _assert_refused_naming_both(plates_cli.invoke(app, ["plates", "reports", "--division", AMBIGUOUS]))


def test_should_list_the_reports_of_the_township_the_authority_names(plates_cli, reported):
    result = plates_cli.invoke(app, ["plates", "reports", "--division", AMBIGUOUS, "--authority", "mca2025"])
    assert result.exit_code == 0, result.output
    assert "湖东街道门牌损坏" in result.stdout and "康山街道门牌损坏" not in result.stdout
    assert "湖东街道（mca2025 330502007）" in result.stderr  # stdout stays the tab-separated list


def test_should_list_reports_by_an_unambiguous_code(plates_cli, reported):
    result = plates_cli.invoke(app, ["plates", "reports", "--division", "330502"])
    assert result.exit_code == 0, result.output
    assert "湖东街道门牌损坏" in result.stdout and "康山街道门牌损坏" in result.stdout


# --- the loaders: --code-authority -------------------------------------------------------------------
@pytest.fixture()
def runner(database_url, monkeypatch, reference):
    monkeypatch.setenv("REGISTRY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _facility_file(tmp_path):
    path = tmp_path / "设施.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["category", "name", "county_code", "township_code", "lon", "lat"])
        w.writerow(["幸福邻里中心", "某中心", "330502", AMBIGUOUS, "120.13", "30.85"])
    return path


@pytest.mark.parametrize("kind", ["addresses", "facilities", "place-names", "heritage", "divisions"])
@pytest.mark.parametrize("value", ["nbs", "MCA", "mca-2025"])
def test_should_refuse_a_code_authority_that_is_not_nbs2023_or_mca2025(runner, tmp_path, kind, value):
    path = _facility_file(tmp_path)
    result = runner.invoke(app, ["load", kind, str(path), "--code-authority", value, "--dry-run"])
    assert result.exit_code == 2, result.output
    assert "--code-authority" in result.output and "nbs2023" in result.output and "mca2025" in result.output
    assert not (tmp_path / "设施.csv.rejects.csv").exists()  # refused before the file was read


def test_should_settle_a_file_s_ambiguous_township_codes_by_code_authority_only(runner, tmp_path):
    path = _facility_file(tmp_path)
    refused = runner.invoke(app, ["load", "facilities", str(path), "--crs", "EPSG:4490", "--dry-run"])
    assert "ambiguous_division" in refused.output
    assert "康山街道" in refused.output and "湖东街道" in refused.output
    settled = runner.invoke(app, ["load", "facilities", str(path), "--crs", "EPSG:4490", "--dry-run",
                                  "--code-authority", "nbs2023"])
    assert settled.exit_code == 0, settled.output
    assert "ambiguous_division" not in settled.output and "新增 inserted 1 " in settled.output
