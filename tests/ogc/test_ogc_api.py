"""OGC API – Features under /ogc, against a generated city: the shape of each endpoint against the
conformance classes claimed (Part 1 core + GeoJSON, Part 2 CRS, Part 3 queryables and CQL2-text),
paging, the registry's history through `datetime`, errors as problem+json, and the requests QGIS
sends in the order it sends them."""
from __future__ import annotations

from sqlalchemy import text

from registry.features.collections import COLLECTIONS
from registry.features.query import CRS84, EPSG4326, EPSG4490, MAX_LIMIT

ITEMS = "/ogc/collections/addresses/items"


def _one_address(conn) -> dict:
    return dict(conn.execute(text("""
        SELECT a.id, a.full_text, a.number_main, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat, s.name AS street
        FROM addresses a JOIN place_names s ON s.id = a.street_id
        WHERE a.status = 'active' AND a.number_main IS NOT NULL ORDER BY a.id LIMIT 1""")).mappings().one())


def test_should_link_the_openapi_document_conformance_and_collections_from_the_landing_page(ogc_client):
    r = ogc_client.get("/ogc")
    assert r.status_code == 200
    rels = {link["rel"]: link for link in r.json()["links"]}
    assert rels["service-desc"]["href"].endswith("/ogc/api")
    assert rels["service-desc"]["type"].startswith("application/vnd.oai.openapi+json")
    assert rels["conformance"]["href"].endswith("/ogc/conformance")
    assert rels["data"]["href"].endswith("/ogc/collections")


def test_should_declare_the_limit_with_its_minimum_maximum_and_default_for_every_collection(ogc_client):
    doc = ogc_client.get("/ogc/api").json()
    assert doc["openapi"].startswith("3.0")
    limit = doc["components"]["parameters"]["limit"]["schema"]
    assert limit == {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 10}
    for cid in COLLECTIONS:
        params = doc["paths"][f"/collections/{cid}/items"]["get"]["parameters"]
        assert {"$ref": "#/components/parameters/limit"} in params
        assert f"/collections/{cid}/items/{{featureId}}" in doc["paths"]


def test_should_claim_only_the_conformance_classes_it_implements(ogc_client):
    classes = set(ogc_client.get("/ogc/conformance").json()["conformsTo"])
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in classes
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text" in classes
    # not implemented, so not claimed: HTML, spatial or temporal CQL2, CQL2 JSON
    assert not any(c.endswith(("/html", "/spatial-functions", "/temporal-functions", "/cql2-json")) for c in classes)


def test_should_describe_each_collection_with_extent_item_count_and_crs(ogc_client, ogc_conn):
    listed = {c["id"] for c in ogc_client.get("/ogc/collections").json()["collections"]}
    assert listed == set(COLLECTIONS) and {"divisions-county", "divisions-township", "divisions-village",
                                           "boundary-lines", "boundary-markers", "streets", "addresses",
                                           "heritage-items", "facilities", "doorplates"} <= listed
    c = ogc_client.get("/ogc/collections/addresses").json()
    active = ogc_conn.execute(text("SELECT count(*) FROM addresses WHERE status = 'active'")).scalar_one()
    assert c["itemCount"] == active
    assert c["storageCrs"] == EPSG4490 and set(c["crs"]) == {CRS84, EPSG4490, EPSG4326}
    x1, y1, x2, y2 = c["extent"]["spatial"]["bbox"][0]
    assert 118 < x1 < x2 < 122 and 29 < y1 < y2 < 32  # Huzhou, longitude first (CRS84)
    assert c["extent"]["spatial"]["crs"] == CRS84
    assert c["extent"]["temporal"]["interval"][0][0] is not None
    assert ogc_client.get("/ogc/collections/divisions-county").json()["itemCount"] == 5


def test_should_page_items_with_next_and_prev_links_typed_geojson(ogc_client):
    r = ogc_client.get(ITEMS)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    assert r.headers["content-crs"] == f"<{CRS84}>"
    body = r.json()
    assert body["numberReturned"] == len(body["features"]) == 10  # the default limit
    assert body["numberMatched"] > 10 and body["timeStamp"].endswith("Z")
    links = {link["rel"]: link for link in body["links"]}
    assert links["next"]["type"] == "application/geo+json" and "prev" not in links
    second = ogc_client.get(links["next"]["href"]).json()
    assert {f["id"] for f in second["features"]}.isdisjoint({f["id"] for f in body["features"]})
    back = {link["rel"]: link for link in second["links"]}["prev"]["href"]
    assert [f["id"] for f in ogc_client.get(back).json()["features"]] == [f["id"] for f in body["features"]]
    last = ogc_client.get(ITEMS, params={"offset": body["numberMatched"] - 1}).json()
    assert last["numberReturned"] == 1 and "next" not in {link["rel"] for link in last["links"]}


def test_should_answer_one_feature_and_404_for_an_unknown_feature_or_collection(ogc_client, ogc_conn):
    a = _one_address(ogc_conn)
    f = ogc_client.get(f"{ITEMS}/{a['id']}").json()
    assert f["id"] == a["id"] and f["properties"]["address"] == a["full_text"]
    for path, parameter in ((f"{ITEMS}/999999999", "featureId"), (f"{ITEMS}/abc", "featureId"),
                            ("/ogc/collections/nowhere", "collectionId"), ("/ogc/collections/nowhere/items",
                                                                          "collectionId")):
        r = ogc_client.get(path)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["parameter"] == parameter


def test_should_refuse_an_invalid_limit_or_an_unknown_parameter_with_400(ogc_client):
    for params, parameter in (({"limit": 0}, "limit"), ({"limit": "ten"}, "limit"), ({"limit": MAX_LIMIT + 1}, "limit"),
                              ({"offset": -1}, "offset"), ({"colour": "red"}, "colour"), ({"bbox": "1,2,3"}, "bbox"),
                              ({"crs": "EPSG:3857"}, "crs"), ({"datetime": "yesterday"}, "datetime"),
                              ({"filter-lang": "cql2-json"}, "filter-lang")):
        r = ogc_client.get(ITEMS, params=params)
        assert r.status_code == 400, params
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["parameter"] == parameter and "/" in r.json()["detail"]  # Chinese / English
    assert ogc_client.get("/ogc/conformance", params={"limit": 1}).status_code == 400


def test_should_publish_no_internal_fields_of_addresses_or_tokens_of_doorplates(ogc_client, ogc_conn):
    props = ogc_client.get(ITEMS, params={"limit": 1}).json()["features"][0]["properties"]
    assert not {"local_seq", "source", "change_set_id", "division_id", "_division_id", "geom"} & set(props)
    addr = _one_address(ogc_conn)
    ogc_conn.execute(text("INSERT INTO doorplates (address_id, kind, status) VALUES (:a, 'door', 'issued')"),
                     {"a": addr["id"]})
    plates = ogc_client.get("/ogc/collections/doorplates/items").json()
    assert plates["numberMatched"] == 1
    plate = plates["features"][0]
    assert set(plate["properties"]) == {"kind", "status", "address", "address_id", "version", "valid_from"}
    assert plate["properties"]["address"] == addr["full_text"]
    assert plate["geometry"]["coordinates"] == [round(addr["lon"], 7), round(addr["lat"], 7)]
    assert set(plate["geometry"]) == {"type", "coordinates"}  # GeoJSON geometries carry no "crs" member


def test_should_answer_epsg_4490_and_4326_in_latitude_longitude_order_and_crs84_in_longitude_latitude(
        ogc_client, ogc_conn):
    a = _one_address(ogc_conn)
    lon, lat = round(a["lon"], 7), round(a["lat"], 7)
    url = f"{ITEMS}/{a['id']}"
    assert ogc_client.get(url).json()["geometry"]["coordinates"] == [lon, lat]
    for crs in (EPSG4490, EPSG4326):
        r = ogc_client.get(url, params={"crs": crs})
        assert r.json()["geometry"]["coordinates"] == [lat, lon]
        assert r.headers["content-crs"] == f"<{crs}>"
    d = 0.0005
    ids = lambda params: {f["id"] for f in ogc_client.get(ITEMS, params={"limit": 1000, **params}).json()["features"]}
    lat_first = f"{lat - d},{lon - d},{lat + d},{lon + d}"
    assert a["id"] in ids({"bbox": lat_first, "bbox-crs": EPSG4326})
    assert a["id"] in ids({"bbox": lat_first, "bbox-crs": EPSG4490})
    assert a["id"] in ids({"bbox": f"{lon - d},{lat - d},{lon + d},{lat + d}"})  # CRS84 by default
    r = ogc_client.get(ITEMS, params={"bbox": lat_first})  # latitude first read as CRS84: not Huzhou at all
    assert r.status_code == 400 or a["id"] not in {f["id"] for f in r.json()["features"]}


def test_should_answer_the_version_in_force_at_a_datetime_before_an_update(ogc_client, ogc_conn):
    a = _one_address(ogc_conn)
    ogc_conn.execute(text("SELECT set_config('registry.valid_time', '2030-01-01T00:00:00+08:00', true)"))
    ogc_conn.execute(text("UPDATE addresses SET full_text = full_text || '（新）' WHERE id = :i"), {"i": a["id"]})
    url = f"{ITEMS}/{a['id']}"
    assert ogc_client.get(url).json()["properties"]["address"] == a["full_text"] + "（新）"
    old = ogc_client.get(url, params={"datetime": "2029-06-01T00:00:00Z"}).json()["properties"]
    assert old["address"] == a["full_text"] and old["version"] == 1
    assert ogc_client.get(url, params={"datetime": "2031-01-01"}).json()["properties"]["version"] == 2
    assert ogc_client.get(url, params={"datetime": "1999-01-01T00:00:00Z"}).status_code == 404  # not yet registered
    listed = ogc_client.get(ITEMS, params={"datetime": "2029-06-01T00:00:00Z", "filter": f"address = '{a['full_text']}'"})
    assert [f["id"] for f in listed.json()["features"]] == [a["id"]]
    during = ogc_client.get(ITEMS, params={"datetime": "2029-01-01T00:00:00Z/..", "limit": 1000,
                                           "filter": "version = 2"}).json()
    assert a["id"] in {f["id"] for f in during["features"]}


def test_should_filter_items_by_a_cql2_text_expression_on_the_queryables(ogc_client, ogc_conn):
    a = _one_address(ogc_conn)
    expected = set(ogc_conn.execute(text("""
        SELECT a.id FROM addresses a JOIN place_names s ON s.id = a.street_id
        WHERE a.status = 'active' AND s.name = :s AND a.number_main >= :n"""),
        {"s": a["street"], "n": a["number_main"]}).scalars())
    got = ogc_client.get(ITEMS, params={"limit": 1000, "filter-lang": "cql2-text",
                                        "filter": f"street = '{a['street']}' AND number_main >= {a['number_main']}"})
    assert got.status_code == 200
    assert {f["id"] for f in got.json()["features"]} == expected and got.json()["numberMatched"] == len(expected)
    for cql in (f"street IN ('{a['street']}', '不存在路') AND NOT (number_main < {a['number_main']})",
                f"(street LIKE '{a['street'][:1]}%' AND street = '{a['street']}') AND number_main >= {a['number_main']}"
                " AND room IS NULL OR code = 'none'"):
        ids = {f["id"] for f in ogc_client.get(ITEMS, params={"limit": 1000, "filter": cql}).json()["features"]}
        with_room = set(ogc_conn.execute(text("SELECT id FROM addresses WHERE room <> ''")).scalars())
        assert ids == (expected - with_room if "room" in cql else expected), cql
    injected = ogc_client.get(ITEMS, params={"filter": "address = 'x'' OR 1=1 --'"})
    assert injected.status_code == 200 and injected.json()["numberMatched"] == 0  # a value, never SQL


def test_should_refuse_a_bad_filter_with_400_naming_it(ogc_client):
    for cql in ("street = ", "colour = 'red'", "number_main = 'twelve'", "street LIKE 3", "(street = 'a'",
                "street = 'a'; DROP TABLE addresses", "'a' = 'a'"):
        r = ogc_client.get(ITEMS, params={"filter": cql})
        assert r.status_code == 400, cql
        assert r.json()["parameter"] == "filter", cql


def test_should_describe_the_queryables_as_json_schema(ogc_client):
    r = ogc_client.get("/ogc/collections/addresses/queryables")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/schema+json")
    schema = r.json()
    assert schema["$schema"].startswith("https://json-schema.org/") and schema["type"] == "object"
    assert schema["properties"]["number_main"]["type"] == "integer"
    assert schema["properties"]["valid_from"] == {"title": schema["properties"]["valid_from"]["title"],
                                                  "type": "string", "format": "date-time"}
    assert "geometry" in schema["properties"]


def test_should_answer_the_requests_qgis_sends_in_its_order(ogc_client, ogc_conn):
    a = _one_address(ogc_conn)
    landing = ogc_client.get("/ogc", headers={"Accept": "application/json"})
    api = ogc_client.get({l["rel"]: l for l in landing.json()["links"]}["service-desc"]["href"])
    assert api.status_code == 200
    maximum = api.json()["components"]["parameters"]["limit"]["schema"]["maximum"]
    assert ogc_client.get("/ogc/conformance").status_code == 200
    assert ogc_client.get("/ogc/collections/addresses").status_code == 200
    options = ogc_client.options(ITEMS)
    assert options.status_code in (200, 204) and "GET" in options.headers["allow"]
    assert ogc_client.get(ITEMS, params={"limit": 10}).json()["numberReturned"] == 10
    assert ogc_client.get(ITEMS, params={"limit": 1}).json()["numberReturned"] == 1
    d = 0.05
    url, seen = ITEMS, []
    params = {"limit": min(maximum, 40), "crs": EPSG4326, "bbox-crs": EPSG4326,
              "bbox": f"{a['lat'] - d},{a['lon'] - d},{a['lat'] + d},{a['lon'] + d}"}
    while url:
        page = ogc_client.get(url, params=params).json()
        seen += page["features"]
        url = next((l["href"] for l in page["links"] if l["rel"] == "next"), None)
        params = None  # the next link carries them
    assert len(seen) == page["numberMatched"] == len({f["id"] for f in seen})
    assert a["id"] in {f["id"] for f in seen}
    mine = next(f for f in seen if f["id"] == a["id"])
    assert mine["geometry"]["coordinates"] == [round(a["lat"], 7), round(a["lon"], 7)]
    assert ogc_client.get("/ogc/collections/addresses/queryables").status_code == 200


def test_should_count_a_collection_once_per_registry_version_and_afresh_in_a_writing_transaction(ogc_conn):
    from registry.features.stats import CollectionStats

    stats, counties = CollectionStats(), COLLECTIONS["divisions-county"]
    assert stats.version(ogc_conn) is not None
    first = stats.describe(ogc_conn, counties)
    assert first["count"] == 5 and stats.describe(ogc_conn, counties) is first  # cached: not counted again
    ogc_conn.execute(text("INSERT INTO change_sets (kind, author, status) VALUES ('load_reference', 'tests', 'applied')"))
    assert stats.version(ogc_conn) is None  # this transaction wrote: its figures are its own
    assert stats.describe(ogc_conn, counties) is not first
