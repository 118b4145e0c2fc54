"""The heritage catalogue: the real facts with their sources and certainty, synthetic items marked,
the API by level, category and division, and a loader that rejects bad rows with reasons."""
import csv

from sqlalchemy import text

from loaders.heritage_cli import HERITAGE_CSV, seed_reference
from loaders.run import FileOptions, load_entities_file
from registry.loading.entities import EntityOptions


def _reference_names():
    with HERITAGE_CSV.open(encoding="utf-8") as f:
        return [r["name"] for r in csv.DictReader(f)]


def test_should_seed_every_real_fact_with_its_source_and_certainty(conn, seeded):
    report, problems = seeded
    assert problems == [] and report.rejected == 0
    rows = conn.execute(text("SELECT name, level, source_url, certainty, synthetic, catalogue, batch "
                             "FROM heritage_items WHERE NOT synthetic")).mappings().all()
    assert sorted(r["name"] for r in rows) == sorted(_reference_names())
    assert all(r["source_url"].startswith("http") and r["certainty"] for r in rows)
    provincial = {r["name"]: r for r in rows if r["level"] == "province"}
    assert set(provincial) == {"新市镇", "义皋村", "蠡山村", "合溪村"}
    assert provincial["合溪村"]["batch"] == "第三批 (2025-05)"
    assert provincial["新市镇"]["catalogue"] == "浙江省千年古镇（古村落）地名文化遗产"
    assert {r["level"] for r in rows if r["name"] in ("衣裳街", "小西街", "百间楼", "荻港村")} == {"candidate"}


def test_should_seed_idempotently(conn, seeded):
    again, _ = seed_reference(conn, actor="tests")
    assert again.inserted == 0 and again.unchanged == len(_reference_names())


def test_should_list_by_level_category_and_division_through_the_api(client, seeded):
    res = client.get("/v1/heritage", params={"level": "省级"})
    assert res.status_code == 200
    assert {i["name"] for i in res.json()["results"]} == {"新市镇", "义皋村", "蠡山村", "合溪村"}
    villages = client.get("/v1/heritage", params={"category": "千年古村落", "division": "330521"}).json()["results"]
    assert [i["name"] for i in villages] == ["蠡山村"]  # 德清县
    one = villages[0]
    assert one["romanized"] == "Lishan Cun" and one["synthetic"] is False and "news" in one["certainty"]
    detail = client.get(f"/v1/heritage/{one['id']}").json()
    assert detail["county"]["name"] == "德清县" and detail["history_versions"][0]["version"] == 1


def test_should_refuse_an_unknown_level_and_answer_404_for_an_unknown_item(client):
    bad = client.get("/v1/heritage", params={"level": "galactic"})
    assert bad.status_code in (400, 422) and "level" in bad.text
    assert client.get("/v1/heritage/987654321").status_code == 404


def test_should_keep_the_origin_of_a_candidate_street(client, seeded):
    hits = client.get("/v1/heritage", params={"category": "古街巷"}).json()["results"]
    street = next(i for i in hits if i["name"] == "衣裳街")
    assert street["romanized"] == "Yishang Jie" and "估衣" in street["origin"] and street["level"] == "candidate"


def test_should_mark_synthetic_items_and_reject_bad_rows_with_reasons(conn, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("name,level,category,division_code,wkt,synthetic\n"
                    "测试古镇,city,千年古镇,330502003,POINT(120.09 30.87),true\n"
                    "坏级别,galactic,古地名,330502003,POINT(120.09 30.87),false\n"
                    "坏标记,city,古地名,330502003,POINT(120.09 30.87),maybe\n", encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    report = load_entities_file(conn, path, "heritage", FileOptions(crs="EPSG:4490", reject_file=rejects),
                                EntityOptions(source="tests", actor="tests", code_authority="nbs2023"))
    assert report.inserted == 1 and report.rejected == 2
    assert conn.execute(text("SELECT synthetic FROM heritage_items WHERE name = '测试古镇'")).scalar() is True
    body = rejects.read_text(encoding="utf-8")
    assert "level" in body and "synthetic" in body
    assert conn.execute(text("SELECT count(*) FROM heritage_items WHERE name IN ('坏级别', '坏标记')")).scalar() == 0


def test_should_take_the_same_level_spellings_in_the_api_and_the_loader(client, seeded):
    from registry.heritage import LEVEL_SPELLINGS, level_code

    provincial = {i["name"] for i in client.get("/v1/heritage", params={"level": "province"}).json()["results"]}
    assert provincial == {"新市镇", "义皋村", "蠡山村", "合溪村"}
    for spelling in ("省级", "provincial", " Province "):
        res = client.get("/v1/heritage", params={"level": spelling})
        assert res.status_code == 200, spelling
        assert {i["name"] for i in res.json()["results"]} == provincial
    # the loader reads a level with the same function (registry/loading/entity_kinds.py)
    assert level_code("区级") == level_code("县级") == "county" and level_code("provincial") == "province"
    assert level_code("galactic") is None and set(LEVEL_SPELLINGS.values()) == {"national", "province", "city",
                                                                               "county", "candidate"}
