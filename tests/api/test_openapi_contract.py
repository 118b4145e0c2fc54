"""The OpenAPI document against the real app on the session database: schemathesis with every check
(`--checks all`), without a key and with an agency or editor key where the key matters, at a bounded
example count; a client generated from the document (openapi-python-client) making real calls; the OGC
API's own document read back as OpenAPI 3.0.

The budget: REGISTRY_SCHEMATHESIS_EXAMPLES (default 1) examples per operation and generation mode in
the fuzzing phase, plus the explicit examples; set it higher (and REGISTRY_SCHEMATHESIS_PHASES to
`examples,coverage,fuzzing`) for a deep run outside the suite.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from registry.keys import create_key
from live_server import serve

st = pytest.importorskip("schemathesis")
ST = str(Path(sys.executable).with_name("st"))
EXAMPLES = os.environ.get("REGISTRY_SCHEMATHESIS_EXAMPLES", "1")
PHASES = os.environ.get("REGISTRY_SCHEMATHESIS_PHASES", "examples,fuzzing")
CLIENT_CACHE = Path(__file__).resolve().parents[2] / "var" / "openapi-client"

# Rules across parameters, or a signature, that no JSON Schema of one parameter can state: a request the
# schema admits may still be a 400 there. Each entry names its rule.
CONFIG = """
[[operations]]
# a doorplate token is base64url of two ids and a MAC: the signature, not the spelling, makes it valid
include-path = ["/p/{token}", "/p/{token}/report"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "410", "429"]

[[operations]]
# x and y must be below 2^z
include-path = "/tiles/{layer_name}/{z}/{x}/{y}.mvt"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]

[[operations]]
# `q` or one structured field is needed; a bbox's minimum must lie below its maximum
include-path = ["/v1/search", "/v1/search/structured"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]

[[operations]]
# without an agency key: `limit` at most 100, no `offset`, active addresses only (a 400 or 403 naming it)
include-path = "/v1/addresses"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]

[[operations]]
# a cursor is one the feed gave (its numbers name a change set and an entity), not any three numbers
include-path = "/v1/changes"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]

[[operations]]
# `crs` must be an EPSG code PostGIS knows, `encoding` applies to shp and csv only
include-path = "/v1/exports/{collection}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]

[[operations]]
# the adjustment's kind decides which other fields it needs (`into` for a merge, `parts` for a split …)
include-path = "/v1/adjustments"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]

[[operations]]
# a PDF takes seconds to draw, an export writes a GIS file: one generated example each
include-path = ["/heritage/atlas.pdf", "/v1/exports/{collection}", "/v1/inspections/{round_number}/report"]
generation.max-examples = 1
"""

# One run: every operation without a key, except those a key changes, which run with the key whose scope they
# need (and `ignored_auth` sends each of those again without it: a 401/403 is expected). Left out of the keys:
# POST /v1/exports (a background job writing a file per example; tests/exports covers it) and the editor's
# POST/PUT routes, which would write change sets, plates, names and adjustments into the shared session
# database (their own modules test them): they run without a key, so every answer is a 401/403.
WITH_KEY = {
    "agency": "^(GET /v1/(addresses/\\{address_id\\}/history|changes|exports|export-jobs)|POST /v1/match)",
    "editor": "^GET /v1/(change-sets|inspections|doorplates)",
}


@pytest.fixture(scope="module")
def live(engine, reference, settings):
    """The app served on a loopback port, on the session database, with an agency and an editor key."""
    from api.app import create_app

    with engine.begin() as conn:
        keys = {scope: create_key(conn, agency=f"契约测试 {scope}", scopes=[scope])
                for scope in ("agency", "editor")}
    app_settings = settings.model_copy(update={"rate_limit_public_per_minute": 0, "rate_limit_report_per_minute": 0})
    try:
        with serve(create_app(app_settings, engine=engine)) as base:
            httpx.get(f"{base}/v1/search", params={"q": "吴兴区"}, timeout=120)  # the gazetteer, loaded once
            yield base, {scope: k.secret for scope, k in keys.items()}
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM api_keys WHERE prefix = ANY(:p)"),
                         {"p": [k.key.prefix for k in keys.values()]})


def _schemathesis(url: str, tmp_path: Path, *args: str, config: str = CONFIG) -> subprocess.CompletedProcess:
    path = tmp_path / "schemathesis.toml"
    path.write_text(config, encoding="utf-8")
    return subprocess.run(
        [ST, "--config-file", str(path), "run", url, "--checks", "all", "--phases", PHASES,
         "--max-examples", EXAMPLES, "--seed", "20261201", "--no-color", "--output-truncate", "false",
         # timing goals live in bench/: a response limit of two minutes only tells a hang
         "--request-timeout", "120", "--max-response-time", "120", *args],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)


def _report(res: subprocess.CompletedProcess) -> str:
    return (res.stdout + res.stderr)[-12000:]


def test_should_pass_every_schemathesis_check_with_and_without_keys(live, tmp_path):
    base, secrets = live
    keys = "".join(f"\n[[operations]]\ninclude-name-regex = '{regex}'\n"
                   f"headers = {{ \"X-API-Key\" = \"{secrets[scope]}\" }}\n" for scope, regex in WITH_KEY.items())
    res = _schemathesis(f"{base}/openapi.json", tmp_path, config=CONFIG + keys)
    assert res.returncode == 0, _report(res)
    # the keys reached their operations: none of them is among those that answered only 401/403
    refused = res.stdout.split("Authentication failed", 1)[-1].split("💡", 1)[0] if "Authentication failed" in \
        res.stdout else ""
    assert not any(op in refused for op in ("GET /v1/changes", "GET /v1/change-sets", "GET /v1/inspections/rounds")), \
        refused


def test_should_pass_schemathesis_on_the_ogc_document(live, tmp_path):
    base, _ = live
    doc = httpx.get(f"{base}/ogc/api").json()
    assert doc["openapi"].startswith("3.0.")
    res = _schemathesis(f"{base}/ogc/api", tmp_path, "--url", f"{base}/ogc",
                        "--include-path-regex", "^/(collections/boundary-lines(/.*)?)?$")  # one collection: the same code
    assert res.returncode == 0, _report(res)


def _generated_client(document: dict) -> Path:
    """openapi-python-client's package for the document, cached under var/ by the document's hash."""
    pytest.importorskip("openapi_python_client", reason="installed by make setup (pip install --no-deps)")
    from openapi_python_client import generate
    from openapi_python_client.config import Config, ConfigFile, MetaType

    body = json.dumps(document, sort_keys=True, ensure_ascii=False).encode()
    folder = CLIENT_CACHE / hashlib.sha256(body).hexdigest()[:16]
    package = folder / "registry_client"
    if (package / "__init__.py").is_file():
        return folder
    for old in CLIENT_CACHE.glob("*"):  # the clients of earlier documents
        shutil.rmtree(old, ignore_errors=True)
    folder.mkdir(parents=True)
    source = folder / "openapi.json"
    source.write_bytes(body)
    binary = {m: "application/octet-stream" for m in ("image/png", "image/svg+xml", "application/pdf",
                                                     "application/vnd.mapbox-vector-tile")}
    config = Config.from_sources(ConfigFile(post_hooks=[], package_name_override="registry_client",
                                            content_type_overrides=binary),
                                 MetaType.NONE, source, "utf-8", True, package)
    errors = [e for e in generate(config=config) if e.level.value == "error"]
    assert not errors, [f"{e.header}: {e.detail}" for e in errors]
    return folder


def test_should_work_through_a_client_generated_from_the_document(live):
    base, secrets = live
    folder = _generated_client(httpx.get(f"{base}/openapi.json").json())
    sys.path.insert(0, str(folder))
    try:
        from registry_client import AuthenticatedClient, Client
        from registry_client.api.divisions import division_v1_divisions_code_get as division
        from registry_client.api.search import search_route_v1_search_get as search

        with Client(base_url=base) as anonymous:
            res = division.sync_detailed(code="330502", client=anonymous)
            assert res.status_code == 200, res.content
            assert json.loads(res.content)["name"] == "吴兴区"
            missing = division.sync_detailed(code="999999", client=anonymous)
            assert missing.status_code == 404 and missing.parsed.status == 404  # the Problem model
        with AuthenticatedClient(base_url=base, token=secrets["agency"]) as agency:  # Authorization: Bearer
            res = search.sync_detailed(q="吴兴区", limit=3, client=agency)
            assert res.status_code == 200, res.content
            assert json.loads(res.content)["results"]
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == "registry_client" or m.startswith("registry_client.")]:
            del sys.modules[name]
