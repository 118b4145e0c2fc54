"""Loads that commit: the CLI in a subprocess killed with SIGKILL mid-load, the re-run that
completes it, `registry load city` twice, and the CLI's output. They run on a database of their
own (`committed_url`), dropped at the end of the session."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from loader_helpers import VILLAGE_A, VILLAGE_B, cli_env, survey as _survey

ROOT = Path(__file__).resolve().parents[2]


def _state(engine) -> dict:
    with engine.connect() as c:
        return dict(c.execute(text("""
            SELECT (SELECT count(*) FROM addresses) AS addresses, (SELECT count(*) FROM change_sets) AS change_sets,
                   (SELECT count(*) FROM place_names) AS places, (SELECT count(*) FROM audit_log) AS audit""")
        ).mappings().one())


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "loaders.cli", *args]


@pytest.mark.parametrize("pause,village,street", [("rows:1000", VILLAGE_A, "测试一路"),
                                                  ("before_commit", VILLAGE_B, "测试二路")])
def test_should_leave_the_registry_unchanged_when_killed_mid_load_and_complete_on_rerun(
        committed, committed_url, tmp_path, pause, village, street):
    path = _survey(committed, tmp_path / "survey.csv", village, street, 3000)
    before = _state(committed)
    marker = tmp_path / "paused"
    env = cli_env(committed_url, REGISTRY_LOADER_PAUSE_AT=pause, REGISTRY_LOADER_PAUSE_FILE=str(marker),
                  REGISTRY_LOADER_BATCH_ROWS="500")
    args = _cli("load", "addresses", str(path), "--crs", "EPSG:4490", "--create-places")
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the loader never reached its pause point"
            time.sleep(0.05)
        with committed.connect() as c:  # the load's transaction is open, its writes invisible
            open_tx = c.execute(text("""SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                                        AND pid <> pg_backend_pid() AND xact_start IS NOT NULL""")).scalar_one()
        assert open_tx >= 1
        assert _state(committed) == before
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.2)  # the server notices the closed connection and aborts the transaction
    assert _state(committed) == before

    rerun = subprocess.run(args, cwd=ROOT, env=cli_env(committed_url), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    after = _state(committed)
    assert after["addresses"] == before["addresses"] + 3000
    assert after["change_sets"] == before["change_sets"] + 1 and after["places"] == before["places"] + 1
    assert "新增 inserted 3,000" in rerun.stdout


@pytest.fixture()
def runner(committed_url, monkeypatch):
    from registry.settings import get_settings

    monkeypatch.setenv("REGISTRY_DATABASE_URL", committed_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_should_print_the_summary_the_reasons_and_where_the_rejects_are(runner, committed, tmp_path):
    from loaders.cli import app

    path = _survey(committed, tmp_path / "s.csv", VILLAGE_A, "测试三路", 20)
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{VILLAGE_A},测试三路,不是门牌,120.1,30.8\n")
    dry = runner.invoke(app, ["load", "addresses", str(path), "--crs", "EPSG:4490", "--create-places", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and "inserted 20" in dry.output and "bad_number" in dry.output
    result = runner.invoke(app, ["load", "addresses", str(path), "--crs", "EPSG:4490", "--create-places",
                                 "--source", "测试普查"])
    assert result.exit_code == 0, result.output
    assert "新增 inserted 20" in result.output and "拒绝 rejected 1" in result.output
    reject = Path(str(path) + ".rejects.csv")
    assert str(reject) in result.output and "bad_number" in reject.read_text(encoding="utf-8-sig")
    assert "change set #" in result.output
    again = runner.invoke(app, ["load", "addresses", str(path), "--crs", "EPSG:4490", "--create-places"])
    assert "未变 unchanged 20" in again.output and "nothing changed" in again.output


def test_should_fail_with_a_clear_message_and_exit_code_on_a_bad_file(runner, tmp_path):
    from loaders.cli import app

    path = tmp_path / "empty.csv"
    path.write_text("")
    result = runner.invoke(app, ["load", "addresses", str(path), "--crs", "EPSG:4490"])
    assert result.exit_code == 1 and "empty" in result.output


def test_should_load_a_generated_city_once_and_skip_it_when_run_again(runner, committed, tmp_path):
    from data.generate import generate_city
    from loaders.city import DERIVE_STEP, load_city
    from loaders.cli import app

    city = generate_city(tmp_path / "city", addresses=2000, seed=3)
    results = load_city(committed, city.out_dir)
    loads = [r for r in results if r.step is not DERIVE_STEP]
    reports = {r.step.name: r.report for r in loads}
    assert all(r.report is not None for r in loads)
    derived = next(r.derived for r in results if r.step is DERIVE_STEP)
    assert derived["county"]["added"] > 0 and derived["township"]["added"] > 0
    assert reports["addresses"].inserted + reports["addresses"].rejected == 2000
    assert reports["addresses"].rejected == 0, reports["addresses"].issues[:5]
    assert reports["village polygons"].updated == 1301 and reports["place names"].rejected == 0
    assert reports["place names"].aliases_added > 0
    before = _state(committed)
    second = runner.invoke(app, ["load", "city", str(city.out_dir)])
    assert second.exit_code == 0, second.output
    assert second.output.count("already applied") == 6
    recheck = load_city(committed, city.out_dir, recheck=True)
    assert all(r.report.unchanged == r.report.read and not r.report.changed
               for r in recheck if r.step is not DERIVE_STEP)
    assert not any(counts.get("changed") for counts in
                   next(r.derived for r in recheck if r.step is DERIVE_STEP).values() if isinstance(counts, dict))
    assert _state(committed) == before


def test_should_let_loads_of_different_villages_and_readers_run_side_by_side(committed, tmp_path):
    from loader_helpers import load

    first = _survey(committed, tmp_path / "a.csv", VILLAGE_A, "并行一路", 50)
    second = _survey(committed, tmp_path / "b.csv", VILLAGE_B, "并行二路", 50)
    before = _state(committed)
    with committed.connect() as one, committed.connect() as two, committed.connect() as reader:
        for c in (one, two, reader):
            c.execute(text("SET lock_timeout = '5s'"))  # a block would fail the test, not hang it
            c.commit()
        with one.begin():
            assert load(one, first, create_places=True).inserted == 50
            with two.begin():
                assert load(two, second, create_places=True).inserted == 50
            with reader.begin():  # readers see the committed state, unblocked
                assert reader.execute(text("SELECT count(*) FROM addresses")).scalar_one() == before["addresses"] + 50
    assert _state(committed)["addresses"] == before["addresses"] + 100
