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
    ("GET", "/p/not-a-token!", 400, "token"),
    ("POST", "/p/not-a-token!/report", 400, "token"),
    ("GET", "/v1/doorplates/reports?division=330502", 403, "X-API-Key"),
    ("POST", "/v1/doorplates/issue", 403, "X-API-Key"),
    ("GET", "/v1/doorplates/1", 403, "X-API-Key"),
    ("GET", "/v1/doorplates/1/qr.svg", 403, "X-API-Key"),
    ("GET", "/v1/doorplates/1/qr.png", 403, "X-API-Key"),
    ("POST", "/v1/doorplates/1/activate", 403, "X-API-Key"),
    ("POST", "/v1/doorplates/1/replace", 403, "X-API-Key"),
    ("POST", "/v1/doorplates/1/revoke", 403, "X-API-Key"),
    ("GET", "/v1/search", 400, "q"),
    ("GET", "/v1/search?q=%20", 400, "q"),
    ("GET", "/v1/search?q=%E4%BA%BA%00%E6%B0%91", 400, "q"),
    ("GET", "/v1/search?q=" + "x" * 10_000, 400, "q"),
    ("GET", "/v1/search?q=abc&limit=0", 400, "limit"),
    ("GET", "/v1/search?q=abc&bbox=120,30,119", 400, "bbox"),
    ("GET", "/v1/search?q=abc&bbox=121,30,120,31", 400, "bbox"),
    ("GET", "/v1/search?q=abc&near=200,30", 400, "near"),
    ("GET", "/v1/search?q=abc&kind=street", 400, "kind"),
    ("GET", "/v1/search?q=abc&division=12", 400, "division"),
    ("GET", "/v1/search/structured", 400, "street"),
    ("GET", "/v1/search/structured?street=abc&limit=99", 400, "limit"),
    ("GET", "/v1/autocomplete", 400, "q"),
    ("GET", "/v1/reverse?lon=abc&lat=30", 400, "lon"),
    ("GET", "/v1/reverse?lon=120&lat=95", 400, "lat"),
    ("GET", "/v1/reverse?lon=120&lat=30&radius=0", 400, "radius"),
    ("POST", "/v1/match", 403, "X-API-Key"),
    ("GET", "/v1/divisions/330502?as_of=2023-13-01", 400, "as_of"),
    ("GET", "/v1/divisions/330503001?as_of=2023-01-01", 404, "as_of"),
    ("GET", "/v1/addresses/1?as_of=yesterday", 400, "as_of"),
    ("POST", "/v1/adjustments", 403, "X-API-Key"),
    ("GET", "/v1/adjustments?division=abc", 400, "division"),
    ("GET", "/v1/placenames?category=raod", 400, "category"),
    ("GET", "/v1/placenames?division=abc", 400, "division"),
    ("GET", "/v1/placenames/categories?x=1", 200, None),
    ("GET", "/v1/placenames/987654321", 404, "id"),
    ("POST", "/v1/placenames/check", 400, "body"),
    ("POST", "/v1/placenames/1/rename", 403, "X-API-Key"),
    ("PUT", "/v1/placenames/1/romanization", 403, "X-API-Key"),
    ("GET", "/v1/heritage?level=galactic", 400, "level"),
    ("GET", "/v1/heritage/987654321", 404, "id"),
    ("GET", "/heritage/atlas?division=abc", 400, "division"),
    ("GET", "/heritage/atlas.pdf?division=abc", 400, "division"),
    ("GET", "/v1/change-sets", 403, "X-API-Key"),
    ("POST", "/v1/change-sets/1/approve", 403, "X-API-Key"),
    ("POST", "/v1/change-sets/1/reject", 403, "X-API-Key"),
    ("POST", "/v1/change-sets/1/apply", 403, "X-API-Key"),
    ("GET", "/v1/boundary-lines?level=galactic", 400, "level"),
    ("GET", "/v1/boundary-lines/nosuch", 400, "line"),
    ("GET", "/v1/boundary-lines/987654321", 404, "line"),
    ("GET", "/v1/boundary-lines/987654321/history", 404, "line"),
    ("GET", "/v1/markers?line=abc", 400, "line"),
    ("GET", "/v1/markers/XYZ", 400, "marker"),
    ("GET", "/v1/markers/987654321", 404, "marker"),
    ("GET", "/v1/markers/987654321/history", 404, "marker"),
    ("GET", "/v1/inspections/rounds", 403, "X-API-Key"),
    ("GET", "/v1/inspections/99", 403, "X-API-Key"),
    ("GET", "/v1/inspections/99/records", 403, "X-API-Key"),
    ("POST", "/v1/inspections/4/packages", 403, "X-API-Key"),
    ("GET", "/v1/inspections/99/report", 403, "X-API-Key"),
    ("GET", "/v1/exports/addresses", 403, "X-API-Key"),
    ("POST", "/v1/exports/addresses", 403, "X-API-Key"),
    ("GET", "/v1/export-jobs/abc", 403, "X-API-Key"),
    ("GET", "/v1/export-jobs/abc/file", 403, "X-API-Key"),
    ("GET", "/v1/changes", 403, "X-API-Key"),
    ("GET", "/tiles/nosuch/1/1/1.mvt", 404, "layer"),
    ("GET", "/tiles/addresses/99/1/1.mvt", 400, "z"),
    ("GET", "/tiles/addresses/2/9/9.mvt", 400, "x"),
    ("GET", "/tiles/nosuch.json", 404, "layer"),
    ("GET", "/tiles?x=1", 200, None),
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
    """Each (method, path) of the OpenAPI document has a row in CASES."""
    import re

    tested = {(method, path.split("?")[0]) for method, path, _, _ in CASES}
    operations = [(method.upper(), template)
                  for template, item in client.app.openapi()["paths"].items() for method in item]
    assert len(operations) >= 10
    missing = []
    for method, template in operations:
        pattern = re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$")
        if not any(m == method and pattern.match(p) for m, p in tested):
            missing.append(f"{method} {template}")
    assert not missing, f"routes without an error-shape case: {missing}"


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
