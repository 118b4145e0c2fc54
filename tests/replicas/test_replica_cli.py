"""`registry db replica` and REGISTRY_REPLICA_URLS: clear errors, no cluster needed."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from loaders.cli import app
from registry.errors import SettingsError
from registry.settings import get_settings, load_settings


@pytest.fixture()
def no_primary(monkeypatch, tmp_path):
    monkeypatch.delenv("REGISTRY_DATABASE_URL", raising=False)
    monkeypatch.setenv("REGISTRY_DATA_DIR", str(tmp_path / "pgdata"))
    monkeypatch.setenv("REGISTRY_PG_PORT", "55449")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_should_refuse_to_make_a_replica_of_a_primary_that_is_not_running(no_primary, tmp_path):
    res = no_primary.invoke(app, ["db", "replica", "start", "--name", "r1"])
    assert res.exit_code == 1
    assert "primary is not running" in res.output
    assert not (tmp_path / "replicas" / "r1").exists()


def test_should_name_a_replica_that_does_not_exist(no_primary):
    res = no_primary.invoke(app, ["db", "replica", "status", "--name", "nope"])
    assert res.exit_code == 1 and "no replica named 'nope'" in res.output
    res = no_primary.invoke(app, ["db", "replica", "promote", "--name", "nope"])
    assert res.exit_code == 1 and "no replica named 'nope'" in res.output
    res = no_primary.invoke(app, ["db", "replica", "start", "--name", "Bad Name"])
    assert res.exit_code == 1 and "invalid replica name" in res.output


def test_should_list_no_replicas_and_explain_the_commands(no_primary):
    assert "no replicas" in no_primary.invoke(app, ["db", "replica", "status"]).output
    out = no_primary.invoke(app, ["db", "replica", "--help"]).output
    for command in ("start", "stop", "promote", "status"):
        assert command in out


@pytest.mark.parametrize("value, why", [
    ("http://127.0.0.1:55441/registry", "postgresql://"),
    ("postgresql://127.0.0.1:notaport/registry", "not a valid database URL"),
    ("postgresql://127.0.0.1:99999/registry", "invalid port"),
    ("postgresql://127.0.0.1:55441", "needs a host and a database"),
])
def test_should_fail_fast_on_a_malformed_replica_url_naming_the_variable(monkeypatch, value, why):
    monkeypatch.setenv("REGISTRY_REPLICA_URLS", f"postgresql://127.0.0.1:55441/registry,{value}")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert err.value.lines[0].startswith("REGISTRY_REPLICA_URLS:") and why in err.value.lines[0]


def test_should_read_a_comma_separated_list_of_replica_urls(monkeypatch):
    monkeypatch.setenv("REGISTRY_REPLICA_URLS", " postgres://a@h1:5433/registry , postgresql://h2/registry,")
    assert load_settings().replica_urls == ("postgresql+psycopg://a@h1:5433/registry",
                                           "postgresql+psycopg://h2/registry")
