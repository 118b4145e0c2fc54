"""The search API: /v1/search (free text and structured), /v1/autocomplete, /v1/reverse and
/v1/match, with their bad input answered as problem+json."""
from __future__ import annotations

import csv
import io
import json

import pytest

from registry.keys import create_key

RESULT_KEYS = {"id", "kind", "name", "address", "code", "division", "lon", "lat", "score", "match"}


@pytest.fixture()
def agency_key(town):
    return create_key(town.conn, agency="湖州市公安局", scopes=["agency"]).secret


def test_should_answer_a_search_with_the_documented_shape(town_client, town):
    res = town_client.get("/v1/search", params={"q": "吴兴区人民路123号"})
    assert res.status_code == 200
    first = res.json()["results"][0]
    assert RESULT_KEYS <= set(first)
    assert first["id"] == town.ids["renmin_wx_123"] and first["kind"] == "address"
    assert first["division"] == {"code": "330502003003", "name": "龙庭社区"}
    assert isinstance(first["lon"], float) and isinstance(first["lat"], float)
    assert first["match"]["levels"] == ["county", "street", "number"]
    assert first["match"]["reason"] and first["low_confidence"] is False
    assert "explain" not in res.json()


def test_should_add_the_explain_trace_when_asked(town_client):
    body = town_client.get("/v1/search", params={"q": "艾山街道人敏路123号", "explain": "true"}).json()
    assert body["explain"]["normalized"] == "艾山街道人敏路123号"
    assert body["explain"]["passes"][0] == "gaps"
    assert body["results"][0]["explain"]["chosen"]


def test_should_explain_an_exact_answer_with_the_numbers_of_its_text(town_client):
    standard = town_client.get("/v1/search", params={"q": "吴兴区人民路123号"}).json()["results"][0]["address"]
    body = town_client.get("/v1/search", params={"q": standard, "explain": "true"}).json()
    assert body["results"][0]["address"] == standard
    trace = body["explain"]
    assert trace["passes"] == ["exact"] and trace["normalized"] == standard
    assert [(n["kind"], n["text"], n["value"]["main"]) for n in trace["numbers"]] == [("number", "123号", 123)]


@pytest.mark.parametrize("params,expected", [
    ({"q": "人民路123号", "division": "330503"}, "renmin_nx_123"),
    ({"q": "人民路123号", "near": "119.905,31.01"}, "renmin_cx_123"),
    ({"q": "人民路123号", "bbox": "120.0,30.8,120.2,30.95"}, "renmin_wx_123"),
])
def test_should_apply_division_near_and_bbox(town_client, town, params, expected):
    first = town_client.get("/v1/search", params=params).json()["results"][0]
    assert first["id"] == town.ids[expected]


def test_should_filter_by_kind(town_client):
    results = town_client.get("/v1/search", params={"q": "荻港村", "kind": "heritage,facility"}).json()["results"]
    assert results and {r["kind"] for r in results} <= {"heritage", "facility"}


def test_should_answer_404_for_an_unknown_division_code(town_client):
    res = town_client.get("/v1/search", params={"q": "人民路", "division": "330599"})
    assert res.status_code == 404 and res.json()["parameter"] == "division"


@pytest.mark.parametrize("path,params", [
    ("/v1/search", {"county": "吴兴区", "street": "人民路", "number": "123"}),
    ("/v1/search/structured", {"county": "吴兴", "township": "爱山街道", "street": "人民路", "number": "123号"}),
    ("/v1/search/structured", {"street": "renminlu", "number": "123", "county": "吴兴区"}),
])
def test_should_answer_structured_search(town_client, town, path, params):
    first = town_client.get(path, params=params).json()["results"][0]
    assert (first["kind"], first["id"]) == ("address", town.ids["renmin_wx_123"])


def test_should_answer_structured_flats(town_client, town):
    params = {"compound": "凤凰小区", "building": "5", "unit": "2", "room": "301", "explain": "true"}
    body = town_client.get("/v1/search/structured", params=params).json()
    assert body["results"][0]["id"] == town.ids["fenghuang_5_2_301"]
    assert body["explain"]["structured"]["building"] == "5"


# --- autocomplete -------------------------------------------------------------------------------
@pytest.mark.parametrize("q", ["人民", "renm", "renminl", "rml", "吴兴区人民"])
def test_should_complete_a_name_from_its_start_characters_pinyin_or_initials(town_client, q):
    res = town_client.get("/v1/autocomplete", params={"q": q})
    assert res.status_code == 200
    texts = [s["text"] for s in res.json()["suggestions"]]
    assert "人民路" in texts, texts


def test_should_complete_doors_of_a_street(town_client):
    res = town_client.get("/v1/autocomplete", params={"q": "吴兴区人民路12", "limit": 5}).json()["suggestions"]
    texts = [s["text"] for s in res]
    assert texts[:2] == ["浙江省湖州市吴兴区爱山街道人民路12号", "浙江省湖州市吴兴区爱山街道人民路12-1号"]
    assert "浙江省湖州市吴兴区爱山街道人民路123号" in texts
    assert all(s["kind"] == "address" for s in res)


def test_should_restrict_completion_to_the_division_typed_first(town_client):
    res = town_client.get("/v1/autocomplete", params={"q": "长兴县人民"}).json()["suggestions"]
    assert [s["address"] for s in res if s["text"] == "人民路"] == ["浙江省湖州市长兴县雉城街道人民路"]


# --- reverse ------------------------------------------------------------------------------------------
def test_should_reverse_geocode_to_the_nearest_address_and_the_division_chain(town_client, town):
    town.builder.village_square("330502003003", 120.095, 30.872, half=0.02)
    res = town_client.get("/v1/reverse", params={"lon": 120.10461, "lat": 30.87205})
    assert res.status_code == 200
    body = res.json()
    assert body["address"]["id"] == town.ids["renmin_wx_123"]
    assert body["address"]["distance_m"] < 10
    assert [d["level"] for d in body["divisions"]] == ["province", "city", "county", "township", "village"]
    assert body["divisions"][-1]["name"] == "龙庭社区"


def test_should_return_no_address_beyond_the_radius(town_client):
    body = town_client.get("/v1/reverse", params={"lon": 119.3, "lat": 30.45, "radius": 50}).json()
    assert body["address"] is None


# --- batch matching -------------------------------------------------------------------------------------
ROWS = ["吴兴区人民路123号", "凤凰小区5栋2单元301室", "火星基地99号", "吳興愛山街道人敏路一百二十三號附近",
        "", "吴兴区人民路999号", "东方红路8号"]


def _csv(rows, column="地址"):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["编号", column])
    for i, r in enumerate(rows):
        w.writerow([i, r])
    return buf.getvalue().encode()


def test_should_match_a_csv_batch_in_input_order_with_confidence_and_reason(town_client, town, agency_key):
    res = town_client.post("/v1/match", content=_csv(ROWS), headers={"Content-Type": "text/csv",
                                                                      "X-API-Key": agency_key})
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    out = list(csv.DictReader(io.StringIO(res.text)))
    assert [int(r["row"]) for r in out] == list(range(1, len(ROWS) + 1))
    assert [r["input"] for r in out] == ROWS
    assert int(out[0]["id"]) == town.ids["renmin_wx_123"] and float(out[0]["confidence"]) >= 0.95
    assert out[0]["levels"] == "county|street|number" and out[0]["code"].startswith("330502003003")
    assert int(out[1]["id"]) == town.ids["fenghuang_5_2_301"]
    assert out[2]["low_confidence"] == "true" or out[2]["id"] == ""
    assert int(out[3]["id"]) == town.ids["renmin_wx_123"]
    assert out[4]["id"] == "" and "not searchable" in out[4]["reason"]
    assert out[5]["kind"] == "place" and "number not found" in out[5]["reason"]
    assert "former name" in out[6]["reason"]


def test_should_match_json_lines_and_answer_json_lines(town_client, town, agency_key):
    body = "\n".join(json.dumps(x, ensure_ascii=False) for x in
                     ["吴兴区人民路12号之1", {"q": "祝良村2组8号"}, {"address": "荻港村钱家浜3组12号"}]).encode()
    res = town_client.post("/v1/match", content=body, headers={"Content-Type": "application/x-ndjson",
                                                                "X-API-Key": agency_key})
    assert res.status_code == 200
    lines = [json.loads(x) for x in res.text.splitlines()]
    assert [x["id"] for x in lines] == [town.ids["renmin_wx_12_1"], town.ids["zl_8"], town.ids["qjb_12"]]
    assert all(x["confidence"] >= 0.9 and x["levels"] for x in lines)


def test_should_refuse_a_batch_without_the_agency_scope(town_client):
    res = town_client.post("/v1/match", content=_csv(ROWS), headers={"Content-Type": "text/csv"})
    assert res.status_code == 403


@pytest.mark.parametrize("body,ctype,parameter", [
    (b"", "text/csv", "body"),
    (_csv(["x"] * 100_001), "text/csv", "body"),
    (b"\xff\xfe\x00", "text/csv", "body"),
    (b"not json\n", "application/x-ndjson", "body"),
    (_csv(["x"], column="名称"), "text/csv", "column"),
])
def test_should_refuse_a_bad_batch_with_a_clear_problem(town_client, agency_key, body, ctype, parameter):
    res = town_client.post("/v1/match", content=body, headers={"Content-Type": ctype, "X-API-Key": agency_key})
    assert res.status_code == 400
    problem = res.json()
    assert res.headers["content-type"].startswith("application/problem+json")
    assert problem["parameter"] == parameter and "/" in problem["detail"]


# --- bad input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("params,parameter,fragment", [
    ({"q": ""}, "q", "must not be empty"),
    ({"q": "x" * 10_000}, "q", "too long"),
    ({"q": "人民路\x07123号"}, "q", "control character"),
    ({"q": "人民路\u0000"}, "q", "control character"),
    ({"q": "人民路", "bbox": "a,b,c,d"}, "bbox", "comma-separated"),
    ({"q": "人民路", "bbox": "120,30,119,31"}, "bbox", "min < max"),
    ({"q": "人民路", "near": "120"}, "near", "comma-separated"),
    ({"q": "人民路", "near": "120,95"}, "near", "latitude"),
    ({"q": "人民路", "limit": "51"}, "limit", "between 1 and 50"),
    ({"q": "人民路", "kind": "road"}, "kind", "kind must be among"),
])
def test_should_refuse_bad_search_input_naming_the_parameter(town_client, params, parameter, fragment):
    res = town_client.get("/v1/search", params=params)
    assert res.status_code == 400
    problem = res.json()
    assert problem["parameter"] == parameter
    assert fragment in problem["detail"]
    assert any("\u4e00" <= c <= "\u9fff" for c in problem["detail"])  # Chinese first, then English


@pytest.mark.parametrize("params,parameter", [({"lon": "nan", "lat": "30"}, "lon"), ({"lon": "120", "lat": "-91"}, "lat"),
                                              ({"lon": "200", "lat": "30"}, "lon"),
                                              ({"lon": "120", "lat": "30", "radius": "99999"}, "radius")])
def test_should_refuse_bad_reverse_input(town_client, params, parameter):
    res = town_client.get("/v1/reverse", params=params)
    assert res.status_code == 400 and res.json()["parameter"] == parameter
