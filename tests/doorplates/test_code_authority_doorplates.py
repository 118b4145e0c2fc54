"""Issuing plates and listing reports by a township code the two authorities gave to different
townships (issue 8, item 1): NBS 330502007 is 康山街道, MCA 330502007 is 湖东街道. A 康山街道 clerk
must never issue (or read the reports of) the other township's plates by accident."""
import pytest
from sqlalchemy import text

from registry.doorplates import issue_plates, live_plate_for, submit_report

AMBIGUOUS = "330502007"
KANGSHAN_NBS, HUDONG_NBS = "330502007", "330502013"
AISHAN = "330502003"  # 爱山街道 under both authorities


def _plates(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM doorplates")).scalar_one()


def _change_sets(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM change_sets")).scalar_one()


def _names(body) -> set[tuple[str, str]]:
    return {(c["authority"], c["name"]) for c in body["candidates"]}


@pytest.fixture()
def two_townships(township_address) -> dict[str, int]:
    return {"康山街道": township_address(KANGSHAN_NBS), "湖东街道": township_address(HUDONG_NBS)}


# --- POST /v1/doorplates/issue ---------------------------------------------------------------------------
def test_should_refuse_an_ambiguous_township_code_when_issuing_plates(client, conn, editor, two_townships):
    plates, change_sets = _plates(conn), _change_sets(conn)
    r = client.post("/v1/doorplates/issue", json={"division": AMBIGUOUS}, headers=editor)
    assert r.status_code == 409, r.text
    assert r.json()["parameter"] == "division"
    assert _names(r.json()) == {("nbs2023", "康山街道"), ("mca2025", "湖东街道")}
    assert (_plates(conn), _change_sets(conn)) == (plates, change_sets)  # nothing issued, nothing recorded


@pytest.mark.parametrize("where", ["body", "query"])
@pytest.mark.parametrize("authority, name, other", [("nbs2023", "康山街道", "湖东街道"),
                                                    ("mca2025", "湖东街道", "康山街道")])
def test_should_issue_plates_for_the_township_the_authority_names_and_say_so(
        client, conn, editor, two_townships, where, authority, name, other):
    if where == "body":
        r = client.post("/v1/doorplates/issue", json={"division": AMBIGUOUS, "authority": authority},
                        headers=editor)
    else:
        r = client.post("/v1/doorplates/issue", params={"authority": authority}, json={"division": AMBIGUOUS},
                        headers=editor)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["issued"] == 1
    assert body["division"] == {**body["division"], "name": name, "authority": authority, "code": AMBIGUOUS}
    assert live_plate_for(conn, two_townships[name]) is not None
    assert live_plate_for(conn, two_townships[other]) is None


def test_should_issue_plates_by_an_unambiguous_code_and_name_the_division(client, conn, editor, township_address):
    aishan = township_address(AISHAN)
    body = client.post("/v1/doorplates/issue", json={"division": AISHAN}, headers=editor).json()
    assert body["issued"] == 1 and body["division"]["name"] == "爱山街道"
    assert live_plate_for(conn, aishan) is not None


def test_should_refuse_an_unknown_authority_when_issuing_plates(client, conn, editor, two_townships):
    before = _plates(conn)
    r = client.post("/v1/doorplates/issue", json={"division": AMBIGUOUS, "authority": "nbs"}, headers=editor)
    assert r.status_code == 400 and r.json()["parameter"] == "authority"
    assert _plates(conn) == before


# --- GET /v1/doorplates/reports?division= --------------------------------------------------------------
@pytest.fixture()
def reports(conn, two_townships) -> dict[str, int]:
    out = {}
    for name, address_id in two_townships.items():
        issue_plates(conn, actor="tests", address_id=address_id)
        out[name] = submit_report(conn, live_plate_for(conn, address_id), "damaged", f"{name}的门牌坏了")["id"]
    return out


def test_should_refuse_an_ambiguous_township_code_when_listing_reports(client, editor, reports):
    r = client.get("/v1/doorplates/reports", params={"division": AMBIGUOUS}, headers=editor)
    assert r.status_code == 409
    assert _names(r.json()) == {("nbs2023", "康山街道"), ("mca2025", "湖东街道")}


@pytest.mark.parametrize("authority, name", [("nbs2023", "康山街道"), ("mca2025", "湖东街道")])
def test_should_list_the_reports_of_the_township_the_authority_names(client, editor, reports, authority, name):
    body = client.get("/v1/doorplates/reports", params={"division": AMBIGUOUS, "authority": authority},
                      headers=editor).json()
    assert [r["id"] for r in body["reports"]] == [reports[name]]
    assert body["division"]["name"] == name and body["division"]["authority"] == authority


def test_should_list_reports_by_an_unambiguous_code_and_name_the_division(client, editor, reports):
    body = client.get("/v1/doorplates/reports", params={"division": "330502"}, headers=editor).json()
    assert body["division"]["name"] == "吴兴区"
    assert {r["id"] for r in body["reports"]} == set(reports.values())
