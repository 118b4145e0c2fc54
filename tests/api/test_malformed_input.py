"""Hostile and careless input: every answer is a 4xx problem+json (never a 500), read without
holding a whole oversized body, and stored data is left as it was.

The route walk takes every route of the app (OpenAPI operations and the routes outside the schema),
so a new route is covered without a new test.
"""
from __future__ import annotations

import asyncio
import csv
import io
import re
from urllib.parse import quote

import pytest
from sqlalchemy import text

from api.limits import BodyLimitMiddleware, json_depth
from registry.keys import create_key

MAIN_TABLES = ("divisions", "division_codes", "place_names", "addresses", "address_codes", "doorplates",
               "doorplate_reports", "heritage_items", "facilities", "change_sets", "api_keys")

HOSTILE = [
    "' OR 1=1 --",
    "1; DROP TABLE addresses; --",
    "a\x00b",
    "%FF%FE%C3%28",  # broken UTF-8, sent percent-encoded as bytes
    "9" * 1500,
    "-1",
    "NaN",
    "1e309",
    "POLYGON((0 0, 1 1, 0 0))",
    "121,31,119,29",  # an inverted bbox
    "200,95",  # a point outside the world
    "😀\u202e\ufeff",
]


def _counts(conn) -> dict[str, int]:
    return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in MAIN_TABLES}


def _is_problem(res) -> bool:
    return res.headers.get("content-type", "").startswith("application/problem+json")


def _assert_4xx_problem(res, what: str) -> None:
    assert 400 <= res.status_code < 500, f"{what}: {res.status_code} {res.text[:300]}"
    assert _is_problem(res), f"{what}: {res.headers.get('content-type')}"


@pytest.fixture()
def agency_key(conn) -> str:
    return create_key(conn, agency="湖州市测试局", scopes=["agency"]).secret


@pytest.fixture()
def all_scopes_key(conn) -> str:
    return create_key(conn, agency="湖州市测试局", scopes=["agency", "editor", "admin"]).secret


# --- body size ----------------------------------------------------------------------------------------
def test_should_refuse_a_60_mb_match_body_with_413_by_its_content_length(client, conn, agency_key):
    before = _counts(conn)
    body = b"\xe5\x9c\xb0\xe5\x9d\x80\n" + b"a" * 60_000_000
    res = client.post("/v1/match", content=body, headers={"Content-Type": "text/csv", "X-API-Key": agency_key})
    assert res.status_code == 413, res.text[:300]
    assert _is_problem(res) and res.json()["parameter"] == "body"
    assert _counts(conn) == before


def test_should_refuse_a_chunked_body_as_soon_as_it_passes_the_limit(app_settings):
    """No Content-Length (chunked): the middleware counts the chunks as the route reads them."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from api import problems

    inner = FastAPI()
    problems.install(inner)

    async def read_all(request):
        return JSONResponse({"size": len(await request.body())})

    inner.add_route("/v1/match", read_all, methods=["POST"])

    read, sent = 0, []

    async def receive():
        nonlocal read
        read += 1
        return {"type": "http.request", "body": b"x" * 1_000_000, "more_body": read < 100}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/match", "headers": [(b"content-type", b"text/csv")],
             "query_string": b"", "http_version": "1.1", "scheme": "http", "server": ("t", 80), "root_path": ""}
    asyncio.run(BodyLimitMiddleware(inner, app_settings)(scope, receive, send))
    assert sent[0]["status"] == 413, sent
    assert read < 100  # the rest was never read
    assert read * 1_000_000 <= app_settings.match_body_limit_bytes + 1_000_000


def test_should_refuse_a_large_body_on_an_ordinary_route(client):
    res = client.post("/p/AAAA/report", content=b"k=" + b"x" * 2_000_000,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    _assert_4xx_problem(res, "report")
    assert res.status_code == 413


def test_should_answer_413_without_reading_the_body_when_content_length_is_too_large(app_settings):
    sent = []

    async def app(scope, receive, send):  # pragma: no cover - must not be reached
        raise AssertionError("the app was called")

    async def receive():  # pragma: no cover - must not be reached
        raise AssertionError("the body was read")

    async def send(message):
        sent.append(message)

    mw = BodyLimitMiddleware(app, app_settings)
    scope = {"type": "http", "method": "POST", "path": "/v1/match",
             "headers": [(b"content-length", b"999999999999")]}
    asyncio.run(mw(scope, receive, send))
    assert sent[0]["status"] == 413


def test_should_name_the_line_of_a_csv_field_over_the_field_limit(client, agency_key):
    body = "编号,地址\n1,湖州市吴兴区\n2," + "长" * 200_000 + "\n"
    res = client.post("/v1/match", content=body.encode(), headers={"Content-Type": "text/csv", "X-API-Key": agency_key})
    _assert_4xx_problem(res, "huge field")
    assert res.status_code == 400
    assert "line 3" in res.json()["detail"] and res.json()["line"] == 3


def test_should_name_the_line_of_a_huge_field_whatever_csv_field_limit_the_process_has(client, agency_key):
    import csv as csv_module

    import loaders.readers  # noqa: F401  (raises the process-wide csv field limit to 1 MiB)

    assert csv_module.field_size_limit() >= 1 << 20
    body = "地址\n湖州市\n" + "长" * 150_000 + "\n"
    res = client.post("/v1/match", content=body.encode(), headers={"Content-Type": "text/csv", "X-API-Key": agency_key})
    assert res.status_code == 400 and res.json()["line"] == 3
    jl = '"湖州市"\n"' + "长" * 150_000 + '"\n'
    res = client.post("/v1/match", content=jl.encode(), headers={"Content-Type": "application/x-ndjson",
                                                                 "X-API-Key": agency_key})
    assert res.status_code == 400 and res.json()["line"] == 2


def test_should_name_the_line_of_an_unterminated_quote_or_nul_in_csv(client, agency_key):
    body = b'\xe5\x9c\xb0\xe5\x9d\x80\n"a\x00b\n"c'
    res = client.post("/v1/match", content=body, headers={"Content-Type": "text/csv", "X-API-Key": agency_key})
    assert res.status_code < 500, res.text[:300]


# --- JSON depth -----------------------------------------------------------------------------------------
def test_should_refuse_a_json_body_nested_100000_deep_with_400(client, conn, all_scopes_key):
    before = _counts(conn)
    deep = b"[" * 100_000 + b"]" * 100_000
    for path in ("/v1/match", "/v1/doorplates/issue", "/v1/no-such-route"):
        res = client.post(path, content=deep, headers={"Content-Type": "application/json",
                                                       "X-API-Key": all_scopes_key})
        _assert_4xx_problem(res, path)
        assert res.status_code == 400 and res.json()["parameter"] == "body"
    assert _counts(conn) == before


def test_should_name_the_line_of_a_deeply_nested_json_line(client, agency_key):
    body = '"湖州市吴兴区"\n'.encode() + b"[" * 50_000 + b"]" * 50_000 + b"\n"
    res = client.post("/v1/match", content=body, headers={"Content-Type": "application/x-ndjson",
                                                          "X-API-Key": agency_key})
    _assert_4xx_problem(res, "ndjson")
    assert res.json()["line"] == 2


def test_should_measure_depth_ignoring_brackets_inside_strings():
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{"}]}') == 3
    assert json_depth(b'"\\"[[["') == 0


# --- headers and encodings ------------------------------------------------------------------------------
def test_should_refuse_headers_over_the_limit_with_431(client):
    res = client.get("/v1/divisions", headers={"X-Junk": "k" * 40_000})
    assert res.status_code == 431 and _is_problem(res)
    assert res.json()["parameter"] == "headers"


def test_should_refuse_an_oversized_or_binary_api_key_with_401(client):
    for value in ("k" * 8_000, "' OR 1=1 --", "\x7f\x01"):
        res = client.get("/v1/divisions", headers={"X-API-Key": value})
        _assert_4xx_problem(res, repr(value[:20]))


def test_should_refuse_broken_utf8_in_a_match_body_naming_the_line(client, agency_key):
    body = "地址\n湖州市\n".encode() + b"\xff\xfe\xc3\x28\n"
    res = client.post("/v1/match", content=body,
                      headers={"Content-Type": "text/csv; charset=utf-8", "X-API-Key": agency_key})
    _assert_4xx_problem(res, "broken utf-8")


def test_should_refuse_an_invalid_content_length(app_settings):
    sent = []

    async def send(message):
        sent.append(message)

    mw = BodyLimitMiddleware(None, app_settings)
    scope = {"type": "http", "method": "POST", "path": "/v1/match", "headers": [(b"content-length", b"-5")]}
    asyncio.run(mw(scope, None, send))
    assert sent[0]["status"] == 400


# --- every route, hostile values ------------------------------------------------------------------------
def _operations(app) -> list[tuple[str, str, list[str], list[str]]]:
    """(method, path template, path parameter names, query parameter names) of every route."""
    ops = []
    seen = set()
    for path, item in app.openapi().get("paths", {}).items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            params = op.get("parameters", [])
            ops.append((method.upper(), path, [p["name"] for p in params if p.get("in") == "path"],
                        [p["name"] for p in params if p.get("in") == "query"]))
            seen.add((method.upper(), path))
    for route in app.routes:  # routes outside the schema (pages, docs…)
        for method in sorted(getattr(route, "methods", None) or ()):
            path = getattr(route, "path", None)
            if path and method != "HEAD" and (method, path) not in seen:
                ops.append((method, path, re.findall(r"{(\w+)(?::\w+)?}", path), []))
    return ops


def _fill(path: str, value: str) -> str:
    return re.sub(r"{\w+(?::\w+)?}", quote(value, safe="") if not value.startswith("%") else value, path)


def _query(names: list[str], value: str) -> str:
    v = value if value.startswith("%") else quote(value, safe="")
    return "&".join(f"{n}={v}" for n in names)


@pytest.fixture()
def walk_client(conn, engine, app_settings):
    """Like `client`, but each request in a savepoint (one refused statement does not poison the
    test's transaction for the next request) and server errors answered, not raised."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import get_conn

    app = create_app(app_settings, engine=engine)

    def _conn():
        sp = conn.begin_nested()
        try:
            yield conn
        except BaseException:
            sp.rollback()
            raise
        else:
            if sp.is_active:
                sp.commit()  # what a request wrote stays in the test's transaction: the counts see it

    app.dependency_overrides[get_conn] = _conn
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_should_answer_every_route_with_hostile_values_without_a_server_error(walk_client, conn, all_scopes_key):
    client = walk_client
    before = _counts(conn)
    failures, tried = [], 0
    ops = _operations(client.app)
    assert len(ops) > 30
    for method, path, path_params, query_params in ops:
        if path.startswith("/v1/match"):
            continue  # bodies are tested above; its hostile query values go through the same reader
        for value in HOSTILE:
            url = _fill(path, value) if path_params else path
            q = _query(query_params, value)
            for headers in ({}, {"X-API-Key": all_scopes_key}):
                body = None
                if method in ("POST", "PUT", "PATCH"):
                    body = ('{"x": "' + value.replace('"', "").replace("\\", "") + '"}').encode()
                    headers = {**headers, "Content-Type": "application/json"}
                res = client.request(method, url + ("?" + q if q else ""), content=body, headers=headers)
                tried += 1
                if res.status_code >= 500 or (res.status_code >= 400 and not _is_problem(res)):
                    failures.append(f"{method} {url[:80]} {value[:20]!r}: {res.status_code} {res.text[:160]}")
    assert not failures, f"{len(failures)} of {tried}:\n" + "\n".join(failures[:40])
    assert _counts(conn) == before


def test_should_refuse_hostile_geometries_where_an_endpoint_takes_a_point_or_bbox(client):
    cases = [("/v1/reverse", {"lon": "NaN", "lat": "30"}), ("/v1/reverse", {"lon": "1e309", "lat": "30"}),
             ("/v1/reverse", {"lon": "120", "lat": "95"}), ("/v1/search", {"q": "人民路", "bbox": "121,31,119,29"}),
             ("/v1/search", {"q": "人民路", "bbox": "1,2,3"}), ("/v1/search", {"q": "人民路", "near": "200,95"}),
             ("/ogc/collections/addresses/items", {"bbox": "a,b,c,d"})]
    for path, params in cases:
        res = client.get(path, params=params)
        _assert_4xx_problem(res, f"{path} {params}")


def test_should_keep_sql_looking_text_as_text(client, conn):
    before = _counts(conn)
    res = client.get("/v1/search", params={"q": "人民路'; DELETE FROM addresses; --"})
    assert res.status_code == 200 or _is_problem(res)
    assert _counts(conn) == before


def test_should_read_a_csv_with_the_documented_columns_after_the_guards(client, agency_key):
    buf = io.StringIO()
    csv.writer(buf).writerows([["地址"], ["湖州市吴兴区"]])
    res = client.post("/v1/match", content=buf.getvalue().encode(),
                      headers={"Content-Type": "text/csv", "X-API-Key": agency_key})
    assert res.status_code == 200, res.text[:300]
    assert res.headers["X-Rows"] == "1"
