"""Configuration mistakes, through the real `registry` command (a subprocess, as a user runs it):
one line per bad variable, named as typed, exit 2, never a traceback; a mistyped database name is
reported, not created; an unknown migration revision is named."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from registry.errors import SettingsError
from registry.settings import PROJECT_ROOT, Settings, load_settings, local_url_reason

REGISTRY = Path(sys.executable).with_name("registry")


def _run(*args: str, env: dict[str, str] | None = None, module: str | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess:
    environ = dict(os.environ, **(env or {}))
    if module:
        cmd = [sys.executable, "-c", f"import {module}"]
    else:
        cmd = [str(REGISTRY)] if REGISTRY.exists() else [sys.executable, "-m", "loaders.cli"]
        cmd += list(args)
    return subprocess.run(cmd, capture_output=True, text=True, env=environ, cwd=PROJECT_ROOT, timeout=timeout)


def _one_line(res: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in res.stderr, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


BAD = [
    ("REGISTRY_PG_PORT", "abc", "应为整数 / input should be a valid integer, got 'abc'"),
    ("REGISTRY_PG_PORT", "80", "at least 1024"),
    ("REGISTRY_LOG_LEVEL", "LOUD", "DEBUG, INFO, WARNING or ERROR"),
    ("REGISTRY_POOL_SIZE", "ten", "input should be a valid integer"),
    ("REGISTRY_POOL_SIZE", "0", "at least 1"),
    ("REGISTRY_DATABASE_NAME", "Registry-1", "lower-case letters"),
    ("REGISTRY_DATABASE_URL", "mysql://x@h/db", "postgresql://"),
    ("REGISTRY_LISTEN_URL", "postgresql:///registry", "needs a host and a database"),
    ("REGISTRY_KEY_CACHE_SECONDS", "soon", "valid number"),
    ("REGISTRY_LOG_HOLD_SECONDS", "-1", "at least 0.0"),
    ("REGISTRY_PUBLIC_BASE_URL", "notaurl", "http:// or https://"),
    ("REGISTRY_PUBLIC_BASE_URL", "ftp://dz.huzhou.gov.cn", "http:// or https://"),
    ("REGISTRY_PUBLIC_BASE_URL", "https://dz.huzhou.gov.cn/?from=plate", "query or fragment"),
    ("REGISTRY_PUBLIC_BASE_URL", "https://dz.huzhou.gov.cn:99999", "not a valid URL"),
]


@pytest.mark.parametrize("variable,value,message", BAD, ids=[f"{v}={x}" for v, x, _ in BAD])
def test_should_name_a_bad_variable_in_one_line_and_exit_2(variable, value, message):
    res = _run("keys", "list", env={variable: value})
    assert res.returncode == 2
    line = _one_line(res)
    assert line.startswith(f"{variable}: ") and message in line and repr(value) in line
    assert res.stdout == ""


def test_should_give_one_line_for_each_of_several_bad_variables():
    res = _run("db", "status", env={"REGISTRY_PG_PORT": "abc", "REGISTRY_LOG_LEVEL": "LOUD",
                                     "REGISTRY_POOL_SIZE": "0"})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = sorted(line.split(":")[0] for line in res.stderr.splitlines() if line.strip())
    assert lines == ["REGISTRY_LOG_LEVEL", "REGISTRY_PG_PORT", "REGISTRY_POOL_SIZE"]


def test_should_refuse_to_serve_with_a_bad_variable():
    res = _run("serve", "--port", "1", env={"REGISTRY_PG_PORT": "abc"})
    assert res.returncode == 2
    assert _one_line(res).startswith("REGISTRY_PG_PORT: ")


def test_should_stop_the_asgi_entry_point_with_one_line_per_bad_variable():
    res = _run(module="api.main", env={"REGISTRY_POOL_SIZE": "many", "REGISTRY_LOG_LEVEL": "LOUD"})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert sorted(line.split(":")[0] for line in res.stderr.splitlines()) == ["REGISTRY_LOG_LEVEL",
                                                                                "REGISTRY_POOL_SIZE"]


def test_should_raise_a_settings_error_listing_the_variables_not_the_fields(monkeypatch):
    monkeypatch.setenv("REGISTRY_PG_PORT", "abc")
    monkeypatch.setenv("REGISTRY_DOORPLATE_SCAN_FLUSH_SECONDS", "-1")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert [line.split(":")[0] for line in err.value.lines] == ["REGISTRY_PG_PORT",
                                                                "REGISTRY_DOORPLATE_SCAN_FLUSH_SECONDS"]
    assert "pg_port" not in str(err.value)


# --- the public base URL ---------------------------------------------------------------------------
@pytest.mark.parametrize("given,stored", [
    ("https://dz.huzhou.gov.cn/", "https://dz.huzhou.gov.cn"),
    ("HTTPS://DZ.Huzhou.gov.cn/registry/", "https://dz.huzhou.gov.cn/registry"),
    ("  http://dz.huzhou.gov.cn:8080  ", "http://dz.huzhou.gov.cn:8080"),
])
def test_should_normalise_the_public_base_url(monkeypatch, given, stored):
    monkeypatch.setenv("REGISTRY_PUBLIC_BASE_URL", given)
    assert load_settings().public_base_url == stored


@pytest.mark.parametrize("url,local", [
    ("http://127.0.0.1:8000", True), ("http://localhost", True), ("http://app.localhost", True),
    ("http://10.0.0.5", True), ("http://172.16.3.4", True), ("http://192.168.1.1", True),
    ("http://169.254.1.1", True), ("http://[::1]", True), ("http://[fd00::1]", True), ("http://0.0.0.0", True),
    ("http://100.64.0.1", True), ("http://registry", True), ("http://nas.local", True),
    ("https://dz.huzhou.gov.cn", False), ("http://61.153.1.1", False), ("https://[2400:3200::1]", False),
])
def test_should_tell_a_public_base_url_from_one_no_phone_can_reach(url, local):
    assert (local_url_reason(url) is not None) == local


def test_should_keep_the_default_base_url_valid_but_local():
    assert local_url_reason(Settings().public_base_url) is not None


# --- databases: only `db start` / `db migrate` create one ----------------------------------------------
@pytest.fixture()
def server(settings: Settings, database_url: str):
    """The test server's admin engine, and env that points the CLI at a database `name` on it."""
    base = make_url(database_url)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def env_for(name: str) -> dict[str, str]:
        if settings.database_url:
            return {"REGISTRY_DATABASE_URL": base.set(database=name).render_as_string(hide_password=False)}
        return {"REGISTRY_DATABASE_NAME": name}

    def exists(name: str) -> bool:
        with admin.connect() as c:
            return c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is not None

    def drop(name: str) -> None:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    yield env_for, exists, drop
    admin.dispose()


@pytest.mark.parametrize("command", [("keys", "list"), ("plates", "keys", "list"),
                                     ("load", "reference", "--skip-if-loaded")])
def test_should_report_a_mistyped_database_name_in_one_line_and_create_nothing(server, command):
    env_for, exists, _ = server
    name = f"registyr_{os.getpid()}"
    res = _run(*command, env=env_for(name))
    assert res.returncode != 0
    line = _one_line(res)
    assert name in line and "does not exist" in line and "registry db migrate" in line
    assert ("REGISTRY_DATABASE_NAME" in line) or ("REGISTRY_DATABASE_URL" in line)
    assert not exists(name)


def test_should_name_an_unknown_revision_in_one_line_before_creating_anything(server):
    env_for, exists, _ = server
    name = f"registry_bogus_{os.getpid()}"
    res = _run("db", "migrate", "bogusrev", env=env_for(name))
    assert res.returncode == 2
    line = _one_line(res)
    assert "'bogusrev'" in line and "unknown revision" in line and "0001" in line
    assert not exists(name)


def test_should_create_the_configured_database_in_db_migrate(server, settings):
    env_for, exists, drop = server
    if settings.database_url:
        pytest.skip("on a server of REGISTRY_DATABASE_URL the registry creates no database")
    name = f"registry_created_{os.getpid()}"
    drop(name)
    try:
        res = _run("db", "migrate", env=env_for(name), timeout=600)
        assert res.returncode == 0, res.stderr
        assert exists(name)
        again = _run("keys", "list", env=env_for(name))  # now every command finds it
        assert again.returncode == 0, again.stderr
    finally:
        drop(name)


def test_should_stop_the_asgi_entry_point_in_one_line_on_a_missing_database(server):
    env_for, exists, _ = server
    name = f"registyr_api_{os.getpid()}"
    res = _run(module="api.main", env=env_for(name))
    assert res.returncode == 1
    assert name in _one_line(res) and not exists(name)
