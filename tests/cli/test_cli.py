"""The `registry` command line, run against the session's test database."""
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from loaders.cli import app
from registry.db.tables import api_keys
from registry.settings import get_settings


@pytest.fixture()
def runner(database_url, monkeypatch, reference):
    monkeypatch.setenv("REGISTRY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_should_print_the_database_url_in_use(runner, database_url):
    result = runner.invoke(app, ["db", "url"])
    assert result.exit_code == 0
    assert result.output.strip() == database_url


def test_should_create_a_key_print_it_once_and_revoke_it(runner, engine):
    result = runner.invoke(app, ["keys", "create", "--agency", "湖州市公安局", "--scope", "agency"])
    assert result.exit_code == 0, result.output
    secret = next(line for line in result.output.splitlines() if line.startswith("hzr_"))
    prefix = secret.split("_")[1]
    try:
        listed = runner.invoke(app, ["keys", "list"])
        assert prefix in listed.output and secret not in listed.output
        assert runner.invoke(app, ["keys", "revoke", prefix]).exit_code == 0
        assert "revoked" in runner.invoke(app, ["keys", "list"]).output
    finally:
        with engine.begin() as c:  # keys are not versioned: clean up what the CLI committed
            c.execute(api_keys.delete().where(api_keys.c.prefix == prefix))


def test_should_refuse_an_unknown_scope_with_a_clear_message(runner):
    result = runner.invoke(app, ["keys", "create", "--agency", "x", "--scope", "root"])
    assert result.exit_code == 1
    assert "root" in result.output


def test_should_skip_reference_loading_when_already_loaded(runner):
    result = runner.invoke(app, ["load", "reference", "--skip-if-loaded"])
    assert result.exit_code == 0 and "already loaded" in result.output


def test_should_refuse_to_load_the_reference_twice(runner):
    result = runner.invoke(app, ["load", "reference"])
    assert result.exit_code == 1 and "already loaded" in result.output


def test_should_fail_fast_on_a_bad_setting(monkeypatch):
    from pydantic import ValidationError

    from registry.settings import Settings

    monkeypatch.setenv("REGISTRY_PG_PORT", "80")
    with pytest.raises(ValidationError, match="pg_port"):
        Settings()


def test_should_derive_county_boundary_lines_once_and_say_unchanged_the_second_time(runner, engine):
    from sqlalchemy import text

    try:
        result = runner.invoke(app, ["derive", "boundaries", "--level", "county"])
        assert result.exit_code == 0, result.output
        assert "12 added" in result.output
        again = runner.invoke(app, ["derive", "boundaries", "--level", "county"])
        assert again.exit_code == 0 and "unchanged" in again.output
    finally:  # boundary lines are versioned (no DELETE): drop what the CLI committed, history and all
        with engine.begin() as c:
            c.execute(text("ALTER TABLE boundary_lines DISABLE TRIGGER USER"))
            c.execute(text("DELETE FROM boundary_lines"))
            c.execute(text("ALTER TABLE boundary_lines ENABLE TRIGGER USER"))


def test_should_answer_help_without_loading_the_database_stack():
    # `registry --help` (and every subcommand's help) is read before anything touches a database:
    # SQLAlchemy, psycopg, numpy and FastAPI are imported by the commands that use them, when they run
    import subprocess
    import sys

    heavy = ("sqlalchemy", "psycopg", "numpy", "fastapi", "pyogrio")
    code = ("import sys; from typer.main import get_command; from loaders.cli import app; "
            "get_command(app); print(' '.join(m for m in %r if m in sys.modules))" % (heavy,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
