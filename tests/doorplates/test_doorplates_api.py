"""The office's doorplate API: issuing, lifecycle and plate records over HTTP; bad input answered
with problem+json naming the parameter."""
from urllib.parse import urlsplit

import pytest

PROBLEM = "application/problem+json"

# (method, path, json body, status, parameter) — with an editor key. Every doorplate route has a row.
EDITOR_CASES = [
    ("POST", "/v1/doorplates/issue", {"division": "330502", "kind": "poster"}, 400, "kind"),
    ("POST", "/v1/doorplates/issue", {}, 400, "address_id"),
    ("POST", "/v1/doorplates/issue", {"division": "33"}, 400, "division"),
    ("POST", "/v1/doorplates/issue", {"address_id": "x"}, 400, "address_id"),
    ("POST", "/v1/doorplates/issue", {"address_id": 987654321}, 404, "address_id"),
    ("GET", "/v1/doorplates/0", None, 400, "plate_id"),
    ("GET", "/v1/doorplates/abc", None, 400, "plate_id"),
    ("GET", "/v1/doorplates/987654321", None, 404, "plate_id"),
    ("GET", "/v1/doorplates/987654321/qr.svg", None, 404, "plate_id"),
    ("GET", "/v1/doorplates/987654321/qr.png", None, 404, "plate_id"),
    ("GET", "/v1/doorplates/1/qr.png?scale=99", None, 400, "scale"),
    ("POST", "/v1/doorplates/987654321/activate", None, 404, "plate_id"),
    ("POST", "/v1/doorplates/987654321/replace", {"reason": "x"}, 404, "plate_id"),
    ("POST", "/v1/doorplates/1/replace", {}, 400, "reason"),
    ("POST", "/v1/doorplates/987654321/revoke", {"reason": "x"}, 404, "plate_id"),
    ("GET", "/v1/doorplates/reports", None, 400, "division"),
    ("GET", "/v1/doorplates/reports?division=330502&status=gone", None, 400, "status"),
    ("GET", "/p/%E9%97%A8%E7%89%8C", None, 400, "token"),
    ("GET", "/p/" + "A" * 60, None, 400, "token"),
    ("POST", "/p/AAAA/report", {"kind": "faded"}, 400, "token"),
]


@pytest.mark.parametrize("method,path,body,status,parameter", EDITOR_CASES)
def test_should_answer_bad_input_with_problem_json_naming_the_parameter(client, editor, method, path, body, status,
                                                                        parameter):
    res = client.request(method, path, json=body, headers={**editor, "Accept": "application/json"})
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith(PROBLEM)
    problem = res.json()
    assert problem["status"] == status and problem["parameter"] == parameter
    assert parameter.split(".")[-1] in problem["detail"] or parameter == "token"


def test_should_cover_every_doorplate_route_with_a_bad_input_case(client):
    paths = {p for p in client.app.openapi()["paths"] if p.startswith(("/p/", "/v1/doorplates"))}
    assert len(paths) >= 8
    tested = [urlsplit(path).path for _, path, _, _, _ in EDITOR_CASES]
    for template in paths:
        prefix = template.split("{")[0]
        assert any(t.startswith(prefix) and t.count("/") == template.count("/") for t in tested), template


def test_should_issue_idempotently_over_http(client, editor, make_address, place):
    a = make_address()
    first = client.post("/v1/doorplates/issue", json={"address_id": a}, headers=editor)
    assert first.status_code == 200 and first.json()["issued"] == 1 and first.json()["change_set_id"]
    again = client.post("/v1/doorplates/issue", json={"division": place.village_code}, headers=editor).json()
    assert again["issued"] == 0 and again["already_issued"] >= 1
    assert client.post("/v1/doorplates/issue", json={"address_id": a, "kind": "door"}, headers=editor).json()[
        "issued"] == 0


def test_should_walk_a_plate_through_its_lifecycle_over_http(client, conn, editor, agency, make_address, plate_for):
    pid, token, url = plate_for(make_address())
    record = client.get(f"/v1/doorplates/{pid}", headers=agency).json()
    assert record["status"] == "issued" and record["url"] == url and "secret" not in str(record)
    assert client.post(f"/v1/doorplates/{pid}/activate", headers=agency).status_code == 403
    assert client.post(f"/v1/doorplates/{pid}/activate", headers=editor).json()["status"] == "active"
    new = client.post(f"/v1/doorplates/{pid}/replace", json={"reason": "破损"}, headers=editor).json()
    assert new["status"] == "issued" and new["id"] != pid
    old = client.get(f"/v1/doorplates/{pid}", headers=agency).json()
    assert old["status"] == "replaced" and old["replaced_by"]["id"] == new["id"]
    assert [h["status"] for h in old["history"]] == ["issued", "active", "replaced"]
    res = client.post(f"/v1/doorplates/{pid}/revoke", json={"reason": "x"}, headers=editor)
    assert res.status_code == 409 and res.json()["plate_status"] == "replaced"
    gone = client.post(f"/v1/doorplates/{new['id']}/revoke", json={"reason": "门牌撤销"}, headers=editor).json()
    assert gone["status"] == "revoked" and gone["reason"] == "门牌撤销"
