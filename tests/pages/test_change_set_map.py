"""`/map/change-sets/{id}.geojson`, what the editor view of `/map?change_set=ID` draws: an inspection
change set's line before and after, a moved marker's old and new places, new markers and the
addresses changing sides — for editors only."""
from __future__ import annotations

from registry.changes import open_change_set
from registry.keys import create_key


def _editor(conn) -> dict:
    return {"X-API-Key": create_key(conn, agency="界线科", scopes=["editor"]).secret}


def test_should_draw_the_line_before_and_after_the_moved_marker_and_the_doors_changing_sides(client, conn, proposal):
    r = client.get(f"/map/change-sets/{proposal['cs']}.geojson", headers=_editor(conn))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["change_set"]["id"] == proposal["cs"] and body["change_set"]["status"] == "proposed"
    by_role = {}
    for f in body["features"]:
        by_role.setdefault(f["properties"]["role"], []).append(f)
    assert sorted(by_role) == ["address_changing_side", "line_after", "line_before", "marker_added", "marker_after",
                               "marker_before", "marker_move"]
    (before,), (after,) = by_role["line_before"], by_role["line_after"]
    assert before["geometry"]["coordinates"] == [[[120.2, 30.8], [120.2, 30.9]]]
    assert after["geometry"]["coordinates"][0][1] == [120.21, 30.85]
    assert after["properties"]["name"] == "吴兴区—南浔区" and after["properties"]["length_m"] == 11250.0
    assert by_role["marker_before"][0]["geometry"]["coordinates"] == [120.2, 30.85]
    assert by_role["marker_after"][0]["geometry"]["coordinates"] == [120.2003, 30.8501]
    assert by_role["marker_move"][0]["geometry"]["coordinates"] == [[120.2, 30.85], [120.2003, 30.8501]]
    assert by_role["marker_after"][0]["properties"]["condition"] == "intact → displaced"
    door = by_role["address_changing_side"][0]
    assert door["properties"]["id"] == proposal["door"] and door["properties"]["to_village"] == "乙村"


def test_should_keep_the_change_set_map_to_editors(client, conn, proposal):
    path = f"/map/change-sets/{proposal['cs']}.geojson"
    assert client.get(path).status_code in (401, 403)  # no key: anonymous, public scope only
    agency = {"X-API-Key": create_key(conn, agency="公安局", scopes=["agency"]).secret}
    r = client.get(path, headers=agency)
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")


def test_should_refuse_a_change_set_that_is_not_an_inspection_and_an_unknown_one(client, conn):
    key = _editor(conn)
    load = open_change_set(conn, kind="load_addresses", author="tests")
    r = client.get(f"/map/change-sets/{load}.geojson", headers=key)
    assert r.status_code == 400 and r.json()["parameter"] == "change_set" and "inspection" in r.json()["detail"]
    r = client.get("/map/change-sets/999999999.geojson", headers=key)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


def test_should_serve_the_editor_view_with_its_review_panel(client):
    html = client.get("/map?change_set=12").text
    assert 'id="changeset"' in html and "editor key" in html
