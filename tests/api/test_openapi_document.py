"""What /openapi.json declares (api/openapi.py): the shape of every operation's answers and the
registry's constraints. Read from the app without a database; schemathesis checks them against the
live app in test_openapi_contract.py."""
import re

import pytest

from api.app import create_app
from registry.divisions import AUTHORITIES


@pytest.fixture(scope="module")
def doc():
    return create_app().openapi()


def _operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


def test_should_answer_every_error_as_problem_json_with_one_schema(doc):
    assert doc["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail", "instance"]
    for method, path, op in _operations(doc):
        responses = op["responses"]
        assert {"401", "429", "431"} <= set(responses), (method, path)
        assert "422" not in responses or path.endswith("/packages"), (method, path)  # invalid input is a 400
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
        assert "WWW-Authenticate" in responses["401"]["headers"] and "Retry-After" in responses["429"]["headers"]


def test_should_declare_403_exactly_where_a_scope_is_needed(doc):
    for method, path, op in _operations(doc):
        keyed = op["security"] == [{"ApiKey": []}, {"Bearer": []}]
        assert keyed == ("403" in op["responses"]) or path == "/v1/addresses", (method, path)
        assert not any(p["name"].lower() in ("x-api-key", "authorization") for p in op.get("parameters", []))


def test_should_declare_the_real_media_types(doc):
    paths = doc["paths"]

    def media(path, status="200", method="get"):
        return set(paths[path][method]["responses"][status].get("content", {}))

    assert media("/v1/addresses") == {"application/geo+json"}
    assert media("/tiles/{layer_name}/{z}/{x}/{y}.mvt") == {"application/vnd.mapbox-vector-tile"}
    assert media("/v1/doorplates/{plate_id}/qr.png") == {"image/png"}
    assert media("/v1/doorplates/{plate_id}/qr.svg") == {"image/svg+xml"}
    assert media("/heritage/atlas.pdf") == {"application/pdf"}
    assert media("/v1/inspections/{round_number}/report") >= {"text/html", "text/csv", "application/pdf"}
    assert media("/p/{token}") == {"application/json", "text/html"}
    assert "410" in paths["/p/{token}"]["get"]["responses"]


def test_should_carry_the_registrys_constraints(doc):
    def param(path, name, method="get"):
        return next(p["schema"] for p in doc["paths"][path][method]["parameters"] if p["name"] == name)

    code = param("/v1/divisions/{code}", "code")["pattern"]
    assert all(re.match(code, c) for c in ("330502", "330502001", "330502001001"))
    assert not any(re.match(code, c) for c in ("33050", "3305020", "abc"))
    assert param("/v1/addresses", "authority")["enum"] == list(AUTHORITIES)
    assert (param("/v1/addresses", "limit")["minimum"], param("/v1/addresses", "limit")["maximum"]) == (1, 1000)
    assert param("/v1/search", "limit")["maximum"] == 50 and param("/v1/search", "q")["maxLength"] == 200
    assert param("/v1/addresses", "status")["enum"] == ["planned", "active", "retired"]
    assert param("/v1/exports/{collection}", "format")["enum"] == ["gpkg", "shp", "geojson", "csv", "fgb"]
    assert param("/v1/reverse", "radius")["maximum"] == 5000


def test_should_answer_405_with_allow(client):
    for method, path, allow in (("DELETE", "/v1/exports/addresses", "GET, POST"), ("PUT", "/healthz", "GET"),
                                ("GET", "/v1/doorplates/issue", "POST"), ("GET", "/v1/placenames/check", "POST")):
        res = client.request(method, path)
        assert res.status_code == 405 and res.headers["allow"] == allow, (method, path, res.headers)
        assert res.headers["content-type"].startswith("application/problem+json")
