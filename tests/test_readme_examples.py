"""The README's examples, run against the code so that they cannot drift from it again (issue 8).

Every ```sh block of README.md is read. Each `curl … http://127.0.0.1:8000/…` line is sent through
the TestClient (the reference divisions plus a small synthetic address set, the search gazetteer
read from the same transaction): the answer must be neither a 5xx nor a 404, and a division named in
the line's comment (`# 康山街道 by its MCA code`) must be named in the answer. Each `registry …`
line must name a real subcommand (its `--help` works) and use only options that subcommand has.
Generic on purpose: README.md is edited by many hands; a line that needs state this test cannot
build goes into SKIP below, with the reason.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import typer.main
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from loaders.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"
BASE = "http://127.0.0.1:8000"

# Lines (by a substring) that cannot run here, and why. Keep it short: every entry is an example
# nobody checks.
SKIP: dict[str, str] = {
    # e.g. "/p/<token>": "needs a token printed on a real plate",
}


def _sh_lines(markdown: str) -> list[str]:
    """The command lines of the ```sh blocks, continuation backslashes joined."""
    lines, block, pending = [], False, ""
    for raw in markdown.splitlines():
        stripped = raw.strip()
        if stripped.startswith("```"):
            block = stripped[3:].strip() in ("sh", "bash", "shell", "console") if not block else False
            pending = ""
            continue
        if not block or not stripped:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = (pending + stripped).removeprefix("$ ")
        line = re.sub(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)+", "", line)  # VAR=value before the command
        pending = ""
        lines.append(line)
    return lines


def _split_comment(line: str) -> tuple[str, str]:
    """(command, comment): the first `#` outside quotes that starts a word begins the comment."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip(), line[i + 1:].strip()
    return line.strip(), ""


LINES = [_split_comment(line) for line in _sh_lines(README.read_text(encoding="utf-8"))]
CURL = [(cmd, comment) for cmd, comment in LINES if cmd.startswith("curl ") and BASE in cmd]
REGISTRY = [(cmd, comment) for cmd, comment in LINES if cmd.startswith("registry ")]


def test_should_find_the_readme_examples():
    assert CURL and REGISTRY, "README.md has no curl or registry examples left: the parser is out of date"


# --- curl -------------------------------------------------------------------------------------------
_FLAGS_WITH_VALUE = {"-X": "method", "--request": "method", "-H": "header", "--header": "header",
                     "-d": "data", "--data": "data", "--data-raw": "data", "--data-binary": "data",
                     "--data-urlencode": "urlencode", "-o": "out", "--output": "out", "-u": "user",
                     "-w": "format", "--write-out": "format", "-F": "form", "--form": "form"}
_FLAGS_ALONE = set("sSfiLvGIk")


def _curl_request(cmd: str) -> dict:
    """The request a curl line makes: method, path with query, headers, body."""
    words = shlex.split(cmd)[1:]
    req = {"method": None, "url": None, "headers": {}, "data": [], "urlencode": [], "get": False, "form": []}
    i = 0
    while i < len(words):
        w = words[i]
        if w in _FLAGS_WITH_VALUE:
            kind, value = _FLAGS_WITH_VALUE[w], words[i + 1]
            i += 2
            if kind == "method":
                req["method"] = value
            elif kind == "header":
                name, _, val = value.partition(":")
                req["headers"][name.strip()] = val.strip()
            elif kind in ("data", "urlencode", "form"):
                req[kind].append(value)
            continue
        if w in ("--get",):
            req["get"] = True
        elif w.startswith("--"):
            pass  # a flag without a value (--silent, --compressed …)
        elif w.startswith("-") and set(w[1:]) <= _FLAGS_ALONE:
            req["get"] = req["get"] or "G" in w
        elif w.startswith("http"):
            req["url"] = w
        else:
            raise AssertionError(f"curl word not understood by the README test: {w!r} in {cmd!r}")
        i += 1
    return req


def _body_and_query(req: dict) -> tuple[str, bytes | None]:
    """(query string to append, request body), as curl builds them: -d as given, --data-urlencode
    encoded; with -G both go to the query string."""
    if any(d.startswith("@") or "=@" in d for d in req["data"] + req["urlencode"]) or req["form"]:
        pytest.skip("the example sends a file the test does not have")
    pairs: list[tuple[str, str]] = []
    for d in req["urlencode"]:
        name, _, value = d.partition("=")
        pairs.append((name, value))
    raw = "&".join(req["data"] + ([urlencode(pairs)] if pairs else []))
    if req["get"]:
        return raw, None
    return "", raw.encode() if raw else None


@pytest.fixture(scope="module")
def readme_world(engine: Engine, reference, township_address_builder):
    """The reference divisions and a small address set (人民路 in 爱山街道, 康山街道 and 湖东街道),
    in a transaction of its own rolled back at the end; the gazetteer read from it; an admin key."""
    from registry.keys import create_key
    from registry.search.loading import load_gazetteer

    conn = engine.connect()
    trans = conn.begin()
    try:
        for township in ("330502003", "330502007", "330502013"):  # 爱山街道; 康山街道, 湖东街道 (NBS)
            for n in (1, 2, 3, 4, 5, 12, 123):
                township_address_builder(conn, township, n)
        key = create_key(conn, agency="README", scopes=["admin"]).secret
        names = sorted(set(conn.execute(text("SELECT name FROM divisions")).scalars()), key=len, reverse=True)
        yield {"conn": conn, "gaz": load_gazetteer(conn), "key": key, "names": names}
    finally:
        trans.rollback()
        conn.close()


@pytest.fixture()
def readme_client(readme_world, engine, app_settings):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import get_conn
    from api.routes.search import get_gazetteer
    from registry.search import StaticSource

    application = create_app(app_settings, engine=engine)

    def _conn():
        yield readme_world["conn"]

    application.dependency_overrides[get_conn] = _conn
    application.dependency_overrides[get_gazetteer] = lambda: StaticSource(readme_world["gaz"])
    with TestClient(application) as c:
        yield c


def _named_divisions(comment: str, names: list[str]) -> list[str]:
    """Division names a comment mentions (the longest first, none inside another one found)."""
    found: list[str] = []
    for name in names:
        if name in comment and not any(name in f for f in found):
            found.append(name)
    return found


@pytest.mark.parametrize("cmd, comment", CURL, ids=[c for c, _ in CURL])
def test_should_answer_each_curl_example_of_the_readme(readme_client, readme_world, cmd, comment):
    for needle, reason in SKIP.items():
        if needle in cmd:
            pytest.skip(reason)
    req = _curl_request(cmd)
    query, body = _body_and_query(req)
    url = urlsplit(req["url"])
    path = url.path + (f"?{url.query}" if url.query else "")
    if query:
        path += ("&" if url.query else "?") + query
    headers = dict(req["headers"])
    for name in list(headers):
        if name.lower() == "x-api-key":
            headers[name] = readme_world["key"]  # the README's placeholder key: a real one here
        elif name.lower() == "authorization":
            headers[name] = f"Bearer {readme_world['key']}"
    method = req["method"] or ("POST" if body is not None else "GET")
    r = readme_client.request(method, path, content=body, headers=headers)
    assert r.status_code < 500 and r.status_code != 404, f"{cmd}\n→ {r.status_code} {r.text[:500]}"
    # an example answers 2xx, unless its comment says which error it shows (`# 409: …`)
    said = {int(n) for n in re.findall(r"\b(4\d\d)\b", comment)}
    assert r.status_code < 400 or r.status_code in said, f"{cmd}\n→ {r.status_code} {r.text[:500]}"
    try:
        answer = json.dumps(r.json(), ensure_ascii=False)
    except ValueError:
        answer = r.text
    for name in _named_divisions(comment, readme_world["names"]):
        assert name in answer, f"{cmd}  # {comment}\n→ the answer does not name {name}: {answer[:500]}"


def test_should_read_a_curl_line_as_curl_would():
    cmd, comment = _split_comment("curl -sG http://127.0.0.1:8000/v1/search --data-urlencode 'q=人民路 #1'"
                                  " -H 'X-API-Key: hzr_…'   # 康山街道, 409: or not")
    assert comment == "康山街道, 409: or not"
    req = _curl_request(cmd)
    assert req["get"] and req["url"] == "http://127.0.0.1:8000/v1/search"
    assert _body_and_query(req) == (urlencode({"q": "人民路 #1"}), None)
    assert req["headers"] == {"X-API-Key": "hzr_…"}
    assert _named_divisions("康山街道 by its MCA code", ["康山街道", "康山"]) == ["康山街道"]


# --- registry … -------------------------------------------------------------------------------------
def _is_group(command) -> bool:
    return hasattr(command, "commands")  # typer's own (vendored) click: no isinstance on click.Group


def _command_path(cmd: str) -> tuple[list[str], object, list[str]]:
    """(subcommand words, the click command, the remaining words) of a `registry …` line."""
    words = shlex.split(cmd)[1:]
    command = typer.main.get_command(app)
    path: list[str] = []
    while _is_group(command) and words and words[0] in command.commands:
        path.append(words[0])
        command = command.commands[words.pop(0)]
    return path, command, words


@pytest.mark.parametrize("cmd, comment", REGISTRY, ids=[c for c, _ in REGISTRY])
def test_should_know_each_registry_command_of_the_readme(cmd, comment):
    path, command, rest = _command_path(cmd)
    assert path and not _is_group(command), f"{cmd}: no such command"
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    used = {w.split("=", 1)[0] for w in rest if re.match(r"^--?[A-Za-z]", w)}
    assert used <= known, f"{cmd}: {sorted(used - known)} are not options of `registry {' '.join(path)}`"
