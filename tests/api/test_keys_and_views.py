"""A key that is sent is checked on every endpoint (a wrong one is a 401, also where no key is
needed; none stays anonymous); an agency key sees the full address record, the public a defined
subset; a validation error names what is wrong, the request body included."""
import pytest
from sqlalchemy import text

from registry.addresses import AGENCY_FIELDS, PUBLIC_FIELDS
from registry.doorplates import issue_plates
from registry.keys import create_key, revoke_key

PROBLEM = "application/problem+json"


@pytest.fixture()
def address_id(conn):
    village = conn.execute(text("""
        SELECT v.id, v.nbs_code, t.id AS township_id, c.id AS county_id FROM divisions v
        JOIN divisions t ON t.id = v.parent_id JOIN divisions c ON c.id = t.parent_id
        WHERE v.level = 'village' AND v.status = 'active' ORDER BY v.nbs_code LIMIT 1""")).one()
    street = conn.execute(text("""INSERT INTO place_names (category, name, division_id, county_id)
                                  VALUES ('road', '测试路', :t, :c) RETURNING id"""),
                          {"t": village.township_id, "c": village.county_id}).scalar_one()
    return conn.execute(text("""
        INSERT INTO addresses (division_id, street_id, number, number_main, full_text, code, local_seq, geom, source)
        VALUES (:v, :s, '12号', 12, '浙江省湖州市测试路12号', :code, 1, ST_SetSRID(ST_MakePoint(120.09, 30.89), 4490),
                'tests.csv') RETURNING id"""), {"v": village.id, "s": street, "code": village.nbs_code + "00000001"}
                        ).scalar_one()


# --- keys on public endpoints ---------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/divisions/330502", "/healthz", "/v1/addresses?division=330502&limit=1"])
def test_should_answer_a_wrong_key_on_a_public_endpoint_with_401(client, path):
    res = client.get(path, headers={"X-API-Key": "hzr_nosuch_0123456789abcdef"})
    assert res.status_code == 401
    assert res.headers["content-type"].startswith(PROBLEM)
    body = res.json()
    assert body["parameter"] == "X-API-Key" and "invalid API key" in body["detail"]
    assert res.headers["WWW-Authenticate"].startswith("ApiKey")


def test_should_answer_a_malformed_or_revoked_bearer_key_on_a_public_endpoint_with_401(client, conn):
    assert client.get("/v1/divisions/330502", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    new = create_key(conn, agency="湖州市邮政管理局", scopes=["agency"])
    assert client.get("/v1/divisions/330502", headers={"X-API-Key": new.secret}).status_code == 200
    revoke_key(conn, new.key.prefix)
    res = client.get("/v1/divisions/330502", headers={"X-API-Key": new.secret})
    assert res.status_code == 401 and "吊销" in res.json()["detail"]


def test_should_keep_a_request_without_a_key_anonymous(client):
    assert client.get("/v1/divisions/330502").status_code == 200


def test_should_count_a_request_once_against_the_keys_rate_limit(client, conn, address_id):
    new = create_key(conn, agency="湖州市统计局", scopes=["agency"], rate_limit_per_minute=2)
    headers = {"X-API-Key": new.secret}
    # the app-wide check and the route's own scope check share one count per request
    path = f"/v1/addresses/{address_id}/history"
    assert client.get(path, headers=headers).status_code == 200
    assert client.get(path, headers=headers).status_code == 200
    assert client.get(path, headers=headers).status_code == 429


# --- public and agency views of an address ----------------------------------------------------------
def test_should_give_an_agency_key_the_full_address_record(client, conn, address_id):
    issue_plates(conn, actor="tests", address_id=address_id)
    public = client.get(f"/v1/addresses/{address_id}").json()["properties"]
    secret = create_key(conn, agency="湖州市公安局", scopes=["agency"]).secret
    agency = client.get(f"/v1/addresses/{address_id}", headers={"X-API-Key": secret}).json()["properties"]

    assert set(public) == set(PUBLIC_FIELDS) - {"id", "lon", "lat"}
    assert set(agency) == set(AGENCY_FIELDS) - {"id", "lon", "lat"}
    assert set(agency) > set(public)
    assert {"version", "valid_from", "change_set_id", "source", "plates"}.isdisjoint(public)
    assert agency["version"] == 1 and agency["source"] == "tests.csv"
    assert agency["history"] == f"/v1/addresses/{address_id}/history"
    assert [(p["kind"], p["status"]) for p in agency["plates"]] == [("door", "issued")]
    # both views: the standard address, code, status, point and the division chain
    for view in (public, agency):
        assert view["address"] == "浙江省湖州市测试路12号" and view["status"] == "active" and view["code"]
        levels = [d["level"] for d in view["divisions"]]
        assert levels[0] == "province" and levels[-1] == "village" and "township" in levels
    follow = client.get(agency["history"], headers={"X-API-Key": secret})
    assert follow.status_code == 200 and follow.json()["versions"][0]["version"] == 1


def test_should_give_the_agency_view_in_a_division_listing_too(client, conn, address_id):
    code = conn.execute(text("SELECT d.nbs_code FROM addresses a JOIN divisions d ON d.id = a.division_id "
                             "WHERE a.id = :a"), {"a": address_id}).scalar_one()
    secret = create_key(conn, agency="湖州市公安局", scopes=["agency"]).secret
    public = client.get("/v1/addresses", params={"division": code}).json()["features"][0]["properties"]
    agency = client.get("/v1/addresses", params={"division": code},
                        headers={"X-API-Key": secret}).json()["features"][0]["properties"]
    assert "change_set_id" not in public and "change_set_id" in agency and agency["plates"] == []


# --- validation messages ----------------------------------------------------------------------------
def test_should_name_the_request_body_when_it_is_missing(client, conn):
    secret = create_key(conn, agency="湖州市民政局", scopes=["editor"]).secret
    res = client.post("/v1/doorplates/issue", headers={"X-API-Key": secret})
    assert res.status_code == 400 and res.headers["content-type"].startswith(PROBLEM)
    body = res.json()
    assert "None" not in body["detail"]
    assert body["parameter"] == "body" and "请求体" in body["detail"] and "the request body" in body["detail"]


def test_should_name_the_request_body_when_it_is_not_json(client, conn):
    secret = create_key(conn, agency="湖州市民政局", scopes=["editor"]).secret
    res = client.post("/v1/doorplates/issue", headers={"X-API-Key": secret, "Content-Type": "application/json"},
                      content=b"{not json")
    assert res.status_code == 400
    body = res.json()
    assert body["parameter"] == "body" and "None" not in body["detail"] and "请求体" in body["detail"]


def test_should_still_name_a_bad_field_of_the_body(client, conn):
    secret = create_key(conn, agency="湖州市民政局", scopes=["editor"]).secret
    res = client.post("/v1/doorplates/issue", headers={"X-API-Key": secret}, json={"address_id": "twelve"})
    assert res.status_code == 400 and res.json()["parameter"] == "address_id"
    assert "参数 address_id" in res.json()["detail"]
