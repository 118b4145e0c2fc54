"""The read API: /v1/boundary-lines and /v1/markers (public), GeoJSON and problem+json."""
from sqlalchemy import text


def test_should_list_the_county_lines_as_a_geojson_feature_collection(city_client):
    r = city_client.get("/v1/boundary-lines", params={"level": "county"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["numberMatched"] == len(body["features"]) == 12
    f = next(f for f in body["features"] if f["properties"]["code"] == "330502330503")
    assert f["geometry"]["type"] == "MultiLineString"
    p = f["properties"]
    assert p["name"] == "吴兴区—南浔区线" and p["left"]["name"] == "吴兴区" and p["right"]["name"] == "南浔区"
    assert p["length_m"] > 10_000 and p["markers"] >= 1 and p["level"] == "county"


def test_should_list_the_lines_around_a_division_given_by_its_code(city_client):
    body = city_client.get("/v1/boundary-lines", params={"level": "county", "division": "330502"}).json()
    names = {f["properties"]["name"] for f in body["features"]}
    assert names == {"吴兴区—南浔区线", "吴兴区—德清县线", "吴兴区—长兴县线", "吴兴区—安吉县线", "吴兴区—市界线"}


def test_should_show_a_township_line_with_the_county_line_it_lies_on(city_client):
    body = city_client.get("/v1/boundary-lines", params={"level": "township", "geometry": "false"}).json()
    on_county = [f for f in body["features"] if f["properties"]["county_line"]]
    assert on_county and all(f["geometry"] is None for f in body["features"])
    assert len(on_county[0]["properties"]["county_line"]["code"]) == 12


def test_should_answer_a_line_by_code_and_by_id(city_client):
    by_code = city_client.get("/v1/boundary-lines/330522000000").json()
    assert by_code["properties"]["name"] == "长兴县—市界线" and by_code["properties"]["neighbour_name"] == "市界"
    by_id = city_client.get(f"/v1/boundary-lines/{by_code['id']}").json()
    assert by_id["properties"]["code"] == "330522000000"


def test_should_answer_404_problem_json_for_an_unknown_line_code(city_client):
    r = city_client.get("/v1/boundary-lines/330502330599")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert "330502330599" in r.json()["detail"] and r.json()["parameter"] == "line"


def test_should_answer_400_for_a_malformed_line_key_or_level(city_client):
    r = city_client.get("/v1/boundary-lines/abc")
    assert r.status_code == 400 and r.json()["parameter"] == "line"
    r = city_client.get("/v1/boundary-lines", params={"level": "village"})
    assert r.status_code == 400 and r.json()["parameter"] == "level"


def test_should_show_a_line_s_history_after_an_update(city_client, city_conn):
    city_conn.execute(text("UPDATE boundary_lines SET name = '吴兴区—南浔区界线' WHERE code = '330502330503'"))
    for path in ("/v1/boundary-lines/330502330503/history", "/v1/boundary-lines/330502330503?history=true"):
        body = city_client.get(path).json()
        assert [v["version"] for v in body["versions"]] == [1, 2]
        assert body["versions"][0]["name"] == "吴兴区—南浔区线" and body["versions"][0]["valid_to"]
        assert body["versions"][1]["name"] == "吴兴区—南浔区界线" and body["versions"][1]["valid_to"] is None


def test_should_list_the_markers_of_a_line_in_number_order(city_client):
    body = city_client.get("/v1/markers", params={"line": "330502330503"}).json()
    assert body["type"] == "FeatureCollection" and body["line"]["name"] == "吴兴区—南浔区线"
    numbers = [f["properties"]["number"] for f in body["features"]]
    assert numbers and all(n.startswith("330502330503") for n in numbers)
    assert [f["properties"]["serial"] for f in body["features"]] == sorted(f["properties"]["serial"]
                                                                          for f in body["features"])


def test_should_answer_a_marker_by_number_with_its_reference_objects(city_client):
    first = city_client.get("/v1/markers", params={"line": "330502330503", "limit": 1}).json()["features"][0]
    number = first["properties"]["number"]
    body = city_client.get(f"/v1/markers/{number}").json()
    p = body["properties"]
    assert body["geometry"]["type"] == "Point" and p["number"] == number and p["crs"] == "EPSG:4490"
    assert len(p["reference_objects"]) >= 3
    assert {"name", "bearing_deg", "distance_m", "lon", "lat"} <= set(p["reference_objects"][0])
    assert p["condition_zh"] and p["photos"] and p["left"]["name"]
    assert city_client.get(f"/v1/markers/{body['id']}").json()["properties"]["number"] == number


def test_should_answer_404_for_an_unknown_marker_and_400_for_a_malformed_number(city_client):
    r = city_client.get("/v1/markers/330502330503999Q")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = city_client.get("/v1/markers/330502-001")
    assert r.status_code == 400 and r.json()["parameter"] == "marker"
    assert city_client.get("/v1/markers", params={"line": "330502330599"}).status_code == 404


def test_should_show_a_marker_s_history_after_its_condition_changes(city_client, city_conn):
    number = city_conn.execute(text("SELECT number FROM boundary_markers WHERE condition <> 'missing' LIMIT 1")).scalar()
    city_conn.execute(text("UPDATE boundary_markers SET condition = 'missing' WHERE number = :n"), {"n": number})
    versions = city_client.get(f"/v1/markers/{number}/history").json()["versions"]
    assert len(versions) == 2 and versions[-1]["condition"] == "missing"


def test_should_answer_an_empty_collection_before_any_line_is_derived(client):
    r = client.get("/v1/boundary-lines", params={"level": "county", "division": "330502", "geometry": "false"})
    assert r.status_code == 200 and r.json()["features"] == [] and r.json()["numberMatched"] == 0
    r = client.get("/v1/markers", params={"limit": 10})
    assert r.status_code == 200 and r.json()["features"] == []
