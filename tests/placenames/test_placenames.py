"""Place names: the category table, the API, a per-name romanization override and a rename, both
kept in history; the former name stays searchable through the search engine."""
from sqlalchemy import text

from registry import placenames
from registry.placename_categories import BY_CODE, CATEGORIES, category_code, category_tree, generic_fits
from registry.search.engine import search
from registry.search.loading import load_gazetteer

AISHAN, WUXING = "330502003", "330502"


def test_should_place_every_category_in_the_four_levels_of_gbt_18521():
    for c in CATEGORIES:
        assert len(c.path) == 4 and c.path[0] in ("自然地理实体", "人文地理实体"), c.code
        assert c.path[-1] == c.name_zh
    assert BY_CODE["bridge"].path == ("人文地理实体", "交通运输设施", "桥梁", "桥梁")
    assert "river" in category_tree()["自然地理实体"]["水系"]["河流"]
    assert not any(c.gbt_code for c in CATEGORIES)  # no class code without a citation


def test_should_know_which_generics_fit_a_category():
    assert generic_fits("bridge", "桥") is True and generic_fits("bridge", "路") is False
    assert generic_fits("natural_village", "浜") is None  # not checked
    assert category_code("标志性建筑") == "landmark" and category_code("行政区") == "division"


def test_should_list_place_names_by_text_category_and_division(client, place):
    pid = place("衣裳街")
    place("衣裳桥", category="bridge")
    res = client.get("/v1/placenames", params={"q": "衣裳", "category": "道路", "division": WUXING})
    assert res.status_code == 200
    hits = res.json()["results"]
    assert [h["name"] for h in hits] == ["衣裳街"] and hits[0]["id"] == pid
    assert hits[0]["romanized"] == "Yishang Jie" and hits[0]["sign"] == "YISHANG JIE"
    assert hits[0]["specific_part"] == "衣裳" and hits[0]["generic_part"] == "街"
    assert hits[0]["category_path"][-1] == "道路"


def test_should_refuse_an_unknown_category_naming_the_parameter(client):
    res = client.get("/v1/placenames", params={"category": "raod"})
    assert res.status_code == 422 or res.status_code == 400
    assert "category" in res.text and "未知" in res.text


def test_should_answer_404_for_an_unknown_place_name(client):
    res = client.get("/v1/placenames/987654321")
    assert res.status_code == 404 and "未找到地名" in res.text


def test_should_keep_a_romanization_override_on_the_name_and_in_its_history(client, conn, place, editor):
    pid = place("长田村", category="natural_village")
    assert client.get(f"/v1/placenames/{pid}").json()["romanized"] == "Changtiancun"
    res = client.put(f"/v1/placenames/{pid}/romanization", json={"romanization": "Zhangtiancun", "reason": "当地读音"},
                     headers=editor)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["romanized"] == "Zhangtiancun" and body["romanization_override"] == "Zhangtiancun"
    history = body["history"]
    assert [h["romanization_override"] for h in history] == [None, "Zhangtiancun"]
    assert history[-1]["reason"] == "当地读音"


def test_should_refuse_a_romanization_override_that_is_not_latin_and_keep_the_row(client, conn, place, editor):
    pid = place("南浔路")
    res = client.put(f"/v1/placenames/{pid}/romanization", json={"romanization": "南浔"}, headers=editor)
    assert res.status_code in (400, 422) and "romanization" in res.text
    assert conn.execute(text("SELECT version FROM place_names WHERE id = :p"), {"p": pid}).scalar() == 1


def test_should_need_an_editor_key_to_rename(client, place):
    pid = place("旧馆路")
    assert client.post(f"/v1/placenames/{pid}/rename", json={"name": "新馆路"}).status_code in (401, 403)


def test_should_keep_the_former_name_in_history_and_searchable_after_a_rename(client, conn, place, editor):
    pid = place("府前街")
    res = client.post(f"/v1/placenames/{pid}/rename",
                      json={"name": "衣裳街", "reason": "恢复老地名", "approval_ref": "湖政发〔2026〕1号"}, headers=editor)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["name"] == "衣裳街" and body["romanized"] == "Yishang Jie" and body["id"] == pid
    assert [f["name"] for f in body["former_names"]] == ["府前街"]
    assert [h["name"] for h in body["history"]] == ["府前街", "衣裳街"]
    assert body["approval_ref"] == "湖政发〔2026〕1号"
    # the list finds it by its former name
    assert [h["id"] for h in client.get("/v1/placenames", params={"q": "府前街"}).json()["results"]] == [pid]
    # and so does the search engine
    gaz = load_gazetteer(conn)
    top = search(gaz, "府前街", limit=5)["results"][0]
    assert (top["kind"], top["id"], top["name"]) == ("place", pid, "衣裳街")
    assert "府前街" in str(top["match"].get("former_names"))


def test_should_refuse_a_rename_to_the_same_name_and_leave_the_row_untouched(conn, place):
    pid = place("人民路")
    import pytest
    from registry.errors import InvalidQuery
    with pytest.raises(InvalidQuery):
        placenames.rename(conn, pid, "人民路", actor="tests")
    assert conn.execute(text("SELECT version FROM place_names WHERE id = :p"), {"p": pid}).scalar() == 1


def test_should_list_the_category_table(client):
    body = client.get("/v1/placenames/categories").json()
    assert {c["code"] for c in body["categories"]} >= {"road", "bridge", "natural_village", "river", "hill"}
    assert "GB/T 18521" in body["source"]


def test_should_list_within_a_township(client, place):
    place("仁皇山路")
    hits = client.get("/v1/placenames", params={"division": AISHAN, "q": "仁皇"}).json()["results"]
    assert hits[0]["romanized"] == "Renhuangshan Lu"


def test_should_find_a_place_name_and_a_heritage_item_by_romanization_and_pinyin_initials(conn, place):
    pid = place("衣裳街")
    conn.execute(text("""INSERT INTO heritage_items (name, level, category, division_id, geom)
                         SELECT '菰城', 'candidate', '古地名', id, ST_SetSRID(ST_MakePoint(120.09, 30.87), 4490)
                         FROM divisions WHERE nbs_code = '330502003'"""))
    gaz = load_gazetteer(conn)
    for q in ("Yishang Jie", "yishangjie", "ysj"):
        top = search(gaz, q, limit=3)["results"]
        assert top and (top[0]["kind"], top[0]["id"]) == ("place", pid), q
    top = search(gaz, "gucheng", limit=3)["results"]
    assert top and top[0]["kind"] == "heritage" and top[0]["name"] == "菰城"
