"""Problem reports from the scan page: stored without personal data, listed per division for the
office, closed when the plate is replaced; bad input named in problem+json."""
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from registry.doorplates import replace_plate


def _path(url):
    return urlsplit(url).path


def test_should_store_a_report_and_list_it_for_the_division_office(client, conn, make_address, plate_for, place,
                                                                    editor):
    a = make_address()
    pid, token, url = plate_for(a)
    res = client.post(_path(url) + "/report", json={"kind": "faded", "text": "字迹看不清了"})
    assert res.status_code == 201, res.text
    report_id = res.json()["id"]
    assert res.json()["kind"] == "faded" and res.json()["status"] == "open"

    listed = client.get(f"/v1/doorplates/reports?division={place.village_code}", headers=editor)
    assert listed.status_code == 200
    body = listed.json()
    assert body["numberMatched"] == 1
    [r] = body["reports"]
    assert r["id"] == report_id and r["plate"]["id"] == pid and r["address"]["id"] == a
    assert (r["kind"], r["kind_name"], r["text"], r["status"]) == ("faded", "褪色", "字迹看不清了", "open")
    county = client.get("/v1/doorplates/reports?division=330502", headers=editor).json()
    assert report_id in [x["id"] for x in county["reports"]]
    elsewhere = client.get("/v1/doorplates/reports?division=330522", headers=editor).json()
    assert report_id not in [x["id"] for x in elsewhere["reports"]]


def test_should_take_a_report_from_the_pages_form_and_thank_the_citizen(client, make_address, plate_for, place,
                                                                         editor):
    _, token, url = plate_for(make_address())
    res = client.post(_path(url) + "/report", data={"kind": "damaged", "text": "被车撞弯"}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == f"/p/{token}?reported=true#report"
    page = client.get(res.headers["location"].split("#")[0], headers={"Accept": "text/html"})
    assert "已收到您的报告" in page.text
    listed = client.get(f"/v1/doorplates/reports?division={place.village_code}", headers=editor).json()
    assert [r["kind"] for r in listed["reports"]] == ["damaged"]


def test_should_close_the_reports_of_a_plate_when_it_is_replaced(client, conn, make_address, plate_for, place,
                                                                 editor):
    pid, _, url = plate_for(make_address())
    for kind in ("damaged", "wrong"):
        assert client.post(_path(url) + "/report", json={"kind": kind}).status_code == 201
    new = replace_plate(conn, pid, reason="按报告更换", actor="tests")
    assert client.get(f"/v1/doorplates/reports?division={place.village_code}", headers=editor).json()[
        "numberMatched"] == 0
    closed = client.get(f"/v1/doorplates/reports?division={place.village_code}&status=closed", headers=editor).json()
    assert closed["numberMatched"] == 2
    assert {(r["status"], r["closed_reason"], r["closed_by_plate"]["id"]) for r in closed["reports"]} == {
        ("closed", "replaced", new["id"])}
    gone = client.post(_path(url) + "/report", json={"kind": "missing"})
    assert gone.status_code == 404 and gone.json()["parameter"] == "token"


def test_should_keep_no_personal_data_in_a_report(client, conn, make_address, plate_for):
    pid, _, url = plate_for(make_address())
    res = client.post(_path(url) + "/report", json={"kind": "wrong", "text": "号码错了，请打13912345678或邮件 a@b.cn"},
                      headers={"User-Agent": "Phone/1.0", "X-Forwarded-For": "10.1.2.3"})
    assert res.status_code == 201
    stored = conn.execute(text("SELECT * FROM doorplate_reports WHERE plate_id=:p"), {"p": pid}).mappings().one()
    assert "13912345678" not in stored["text"] and "a@b.cn" not in stored["text"] and "[已隐去]" in stored["text"]
    assert set(stored.keys()) == {"id", "plate_id", "kind", "text", "created_at", "status", "closed_at",
                                  "closed_reason", "closed_by_plate_id"}
    assert "10.1.2.3" not in str(dict(stored)) and "Phone/1.0" not in str(dict(stored))


@pytest.mark.parametrize("payload,parameter", [
    ({"kind": "faded", "text": "字" * 501}, "text"),
    ({"kind": "graffiti"}, "kind"),
    ({}, "kind"),
    ({"kind": "faded", "text": 12}, "text"),
])
def test_should_name_the_parameter_of_a_bad_report(client, make_address, plate_for, payload, parameter):
    _, _, url = plate_for(make_address())
    res = client.post(_path(url) + "/report", json=payload)
    assert res.status_code == 400 and res.headers["content-type"].startswith("application/problem+json")
    assert res.json()["parameter"] == parameter and parameter in res.json()["detail"]


def test_should_refuse_a_report_with_a_forged_token(client, make_address, plate_for):
    _, token, _ = plate_for(make_address())
    forged = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    res = client.post(f"/p/{forged}/report", json={"kind": "faded"})
    assert res.status_code == 400 and res.json()["parameter"] == "token"


def test_should_list_reports_only_for_the_office(client, agency):
    assert client.get("/v1/doorplates/reports?division=330502").status_code == 403
    assert client.get("/v1/doorplates/reports?division=330502", headers=agency).status_code == 403


def test_should_name_the_parameter_of_a_bad_report_listing(client, editor):
    for query, parameter in (("division=33", "division"), ("division=330502&status=gone", "status"),
                             ("division=330502&limit=0", "limit")):
        res = client.get(f"/v1/doorplates/reports?{query}", headers=editor)
        assert res.status_code == 400 and res.json()["parameter"] == parameter
