"""GET /v1/divisions/{code}."""


def test_should_return_a_county_with_its_codes_parents_and_children(client):
    body = client.get("/v1/divisions/330502").json()
    assert body["name"] == "吴兴区" and body["level"] == "county"
    assert body["codes"] == {"nbs2023": "330502", "mca2025": "330502"}
    assert [p["name"] for p in body["parents"]] == ["浙江省", "湖州市"]
    names = {c["name"] for c in body["children"]}
    assert "爱山街道" in names and all(c["code"] for c in body["children"])
    assert "geometry" not in body


def test_should_find_a_township_by_either_code_when_asked_for_the_authority(client):
    body = client.get("/v1/divisions/330502010", params={"authority": "mca2025"}).json()
    assert body["name"] == "康山街道"
    assert body["codes"] == {"nbs2023": "330502007", "mca2025": "330502010"}
    nbs = client.get("/v1/divisions/330502007", params={"authority": "nbs2023"}).json()
    assert nbs["id"] == body["id"]
    assert nbs["matched"] == {"code": "330502007", "authority": "nbs2023"}


def test_should_refuse_a_code_the_authorities_gave_to_different_townships_naming_both(client):
    # 330502007 is 康山街道 for the NBS (2023) but 湖东街道 for the MCA (2025): never guessed.
    r = client.get("/v1/divisions/330502007")
    assert r.status_code == 409
    body = r.json()
    assert {(c["authority"], c["name"]) for c in body["candidates"]} == {("nbs2023", "康山街道"), ("mca2025", "湖东街道")}


def test_should_resolve_a_code_both_authorities_agree_on_without_an_authority(client):
    body = client.get("/v1/divisions/330502003").json()
    assert body["name"] == "爱山街道" and body["matched"] == {"code": "330502003", "authority": "mca2025"}


def test_should_return_a_village_with_its_full_chain(client):
    body = client.get("/v1/divisions/330502001005").json()
    assert body["name"] == "浮星桥社区" and body["full_name"] == "浮星桥社区居委会"
    assert [p["level"] for p in body["parents"]] == ["province", "city", "county", "township"]


def test_should_include_geojson_geometry_on_request(client):
    body = client.get("/v1/divisions/330503", params={"geometry": "true"}).json()
    assert body["geometry"]["type"] == "MultiPolygon"
    lon, lat = body["geometry"]["coordinates"][0][0][0]
    assert 119.0 < lon < 121.0 and 30.0 < lat < 31.5
