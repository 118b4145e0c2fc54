"""Every endpoint answers bad input with RFC 9457 problem+json naming the parameter at fault."""
import pytest

from registry.keys import create_key

# (method, path, expected status, parameter named) — one row at least per route.
CASES = [
    ("GET", "/v1/divisions/abc", 400, "code"),
    ("GET", "/v1/divisions/999999", 404, "code"),
    ("GET", "/v1/divisions/330502?authority=gb", 400, "authority"),
    ("GET", "/v1/addresses/0", 400, "id"),
    ("GET", "/v1/addresses/abc", 400, "address_id"),
    ("GET", "/v1/addresses/987654321", 404, "id"),
    ("GET", "/v1/addresses", 400, "division"),
    ("GET", "/v1/addresses?division=33050", 400, "division"),
    ("GET", "/v1/addresses?division=330502&limit=0", 400, "limit"),
    ("GET", "/v1/addresses?division=330502&limit=5000", 400, "limit"),
    ("GET", "/v1/addresses?division=330502&offset=-1", 400, "offset"),
    ("GET", "/v1/addresses?division=330502&status=gone", 400, "status"),
    ("GET", "/v1/addresses/1/history", 403, "X-API-Key"),
    ("GET", "/v1/change-sets/1", 403, "X-API-Key"),
    ("GET", "/v1/change-sets/0", 403, "X-API-Key"),
    ("GET", "/healthz?x=1", 200, None),
    ("GET", "/no/such/path", 404, None),
]


@pytest.mark.parametrize("method,path,status,parameter", CASES)
def test_should_answer_with_problem_json_naming_the_parameter(client, method, path, status, parameter):
    res = client.request(method, path)
    assert res.status_code == status, res.text
    if status < 400:
        return
    assert res.headers["content-type"].startswith("application/problem+json")
    body = res.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:huzhou-registry:problem:")
    assert body["title"] and body["detail"] and body["instance"] == path.split("?")[0]
    if parameter:
        assert body["parameter"] == parameter
        if status == 400:
            assert parameter.split(".")[-1] in body["detail"]


def test_should_cover_every_route_of_the_api(client):
    tested = {path.split("?")[0] for _, path, _, _ in CASES}
    templates = {r.path for r in client.app.routes if getattr(r, "include_in_schema", False)}
    for template in templates:
        prefix = template.split("{")[0]
        assert any(t.startswith(prefix) and t.count("/") == template.count("/") for t in tested), template


def test_should_answer_401_for_a_wrong_key(client):
    res = client.get("/v1/change-sets/1", headers={"X-API-Key": "hzr_deadbeef_nope"})
    assert res.status_code == 401
    assert res.headers["content-type"].startswith("application/problem+json")
    assert "WWW-Authenticate" in res.headers


def test_should_answer_401_for_a_malformed_key(client):
    assert client.get("/v1/change-sets/1", headers={"X-API-Key": "letmein"}).status_code == 401


def test_should_answer_400_for_a_bad_id_even_with_the_right_scope(client, conn):
    secret = create_key(conn, agency="测试局", scopes=["editor"]).secret
    res = client.get("/v1/change-sets/0", headers={"X-API-Key": secret})
    assert res.status_code == 400 and res.json()["parameter"] == "change_set_id"
