"""GET /v1/addresses: the public sees what a citizen may see (active addresses, no internal
fields), in bounded pages followed by `next` links (keyset, no total); an agency sees more."""
from __future__ import annotations

from sqlalchemy import text

from registry.keys import create_key

AISHAN = "330502001"


def _ids(body) -> list[int]:
    return [f["id"] for f in body["features"]]


def test_public_should_see_active_addresses_only_in_keyset_pages(client, conn, township_address):
    ids = [township_address(AISHAN) for _ in range(5)]
    conn.execute(text("UPDATE addresses SET status = 'retired' WHERE id = :i"), {"i": ids[1]})
    active = [i for i in ids if i != ids[1]]
    seen, url, pages = [], "/v1/addresses?division=" + AISHAN + "&limit=2", 0
    while url:
        body = client.get(url).json()
        assert "numberMatched" not in body  # no count(*) per public page
        assert body["numberReturned"] <= 2
        seen += _ids(body)
        url = body.get("next")
        pages += 1
        assert pages < 10
    assert seen == active
    assert pages == 2


def test_public_should_not_see_internal_fields(client, township_address):
    township_address(AISHAN)
    props = client.get("/v1/addresses", params={"division": AISHAN}).json()["features"][0]["properties"]
    for internal in ("version", "change_set_id", "source", "valid_from"):
        assert internal not in props


def test_public_should_be_refused_retired_rows_offsets_and_large_pages(client, conn, township_address):
    township_address(AISHAN)
    before = conn.execute(text("SELECT count(*) FROM addresses")).scalar_one()
    for params, status, parameter in (({"status": "retired"}, 403, "status"), ({"offset": 100}, 400, "offset"),
                                      ({"limit": 1000}, 400, "limit"), ({"after": -1}, 400, "after"),
                                      ({"after": 2**70}, 400, "after")):
        res = client.get("/v1/addresses", params={"division": AISHAN, **params})
        assert res.status_code == status, (params, res.text)
        assert res.headers["content-type"].startswith("application/problem+json")
        assert res.json()["parameter"] == parameter
    assert conn.execute(text("SELECT count(*) FROM addresses")).scalar_one() == before


def test_agency_should_see_every_status_a_total_and_offsets(client, conn, township_address):
    ids = [township_address(AISHAN) for _ in range(3)]
    conn.execute(text("UPDATE addresses SET status = 'retired' WHERE id = :i"), {"i": ids[0]})
    key = create_key(conn, agency="湖州市民政局", scopes=["agency"]).secret
    h = {"X-API-Key": key}
    body = client.get("/v1/addresses", params={"division": AISHAN, "limit": 2}, headers=h).json()
    assert body["numberMatched"] == 3 and _ids(body) == ids[:2]
    assert "after=" in body["next"]
    rest = client.get(body["next"], headers=h).json()
    assert _ids(rest) == ids[2:] and "next" not in rest
    retired = client.get("/v1/addresses", params={"division": AISHAN, "status": "retired"}, headers=h).json()
    assert _ids(retired) == [ids[0]]
    assert _ids(client.get("/v1/addresses", params={"division": AISHAN, "offset": 1}, headers=h).json()) == ids[1:]
