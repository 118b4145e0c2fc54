"""The engine's exact path (registry.search.engine.exact_hit): a stored standard text, with or
without 浙江省湖州市, or without its county when one county alone completes it, is answered by a
lookup — with the answer the passes (scan and interpret) would have given."""
from __future__ import annotations

from sqlalchemy import text

from conftest import DEQING_WUKANG, LONGTING, WUXING_AISHAN, Builder
from registry.search.engine import Filters, interpret, run
from registry.search.gazetteer import CITY_PREFIX
from registry.search.loading import load_gazetteer
from registry.search.parse import scan
from registry.search.query import prepare
from registry.search.rank import to_dict


def _by_the_passes(gaz, q: str) -> dict:
    pq = prepare(q)
    hits = interpret(gaz, pq, scan(pq, gaz.names, "gaps", {}), Filters(), {})
    return to_dict(gaz, hits[0])


def _samples(gaz, per_kind: int = 15) -> list[str]:
    """Stored texts of each kind: street doors, compound flats, rural doors."""
    s = gaz.addresses
    kinds: dict[str, list[str]] = {"street": [], "compound": [], "rural": []}
    for i in range(len(s.ids)):
        if not s.alive[i]:
            continue
        full = s.text(i)[1]
        rec = s.record(i)
        kind = "street" if rec["street"] else "compound" if "幢" in full else "rural"
        if len(kinds[kind]) < per_kind and s.by_text(full) is not None:  # one door with this text
            kinds[kind].append(full)
    assert all(kinds.values()), {k: len(v) for k, v in kinds.items()}
    return [t for texts in kinds.values() for t in texts]


def _without_county(gaz, full: str) -> str:
    tail = full.removeprefix(CITY_PREFIX)
    county = next(d.name for d in gaz.divisions.values() if d.level == "county" and tail.startswith(d.name))
    return tail[len(county):]


def test_should_answer_a_standard_text_without_its_county_exactly_as_the_passes_do(city_gaz):
    for full in _samples(city_gaz):
        q = _without_county(city_gaz, full)
        outcome = run(city_gaz, q)
        assert outcome.passes == ["exact"], q
        answer = to_dict(city_gaz, outcome.hits[0])
        assert answer["address"] == full and "county" not in answer["match"]["levels"]
        assert answer == _by_the_passes(city_gaz, q), q


def test_should_name_in_an_exact_answer_the_levels_the_passes_name(city_gaz):
    # the village of a compound flat is not in its text: neither reading says it was matched
    for full in _samples(city_gaz):
        q = full.removeprefix(CITY_PREFIX)
        outcome = run(city_gaz, q)
        assert outcome.passes == ["exact"], q
        assert to_dict(city_gaz, outcome.hits[0])["match"]["levels"] == _by_the_passes(city_gaz, q)["match"]["levels"]


def test_should_leave_a_text_that_two_counties_complete_to_the_passes(conn, reference):
    b = Builder(conn)
    aishan = b.division(WUXING_AISHAN)
    # a township of 德清县 renamed (in this test's transaction) to the name of one of 吴兴区
    conn.execute(text("UPDATE divisions SET name = :n, full_name = :n WHERE nbs_code = :c"),
                 {"n": aishan["name"], "c": DEQING_WUKANG})
    deqing_village = conn.execute(text("SELECT v.nbs_code FROM divisions v JOIN divisions t ON t.id = v.parent_id "
                                       "WHERE t.nbs_code = :c AND v.level = 'village' ORDER BY v.nbs_code LIMIT 1"),
                                  {"c": DEQING_WUKANG}).scalar_one()
    for village, township in ((LONGTING, WUXING_AISHAN), (deqing_village, DEQING_WUKANG)):
        b.address(village, street=b.place("同名路", township), number="8号")
    b.address(LONGTING, street=b.place("独有路", WUXING_AISHAN), number="9号")
    gaz = load_gazetteer(conn)

    both = run(gaz, aishan["name"] + "同名路8号")
    assert both.passes != ["exact"]
    assert {to_dict(gaz, h)["address"] for h in both.hits[:2]} == {
        CITY_PREFIX + "吴兴区" + aishan["name"] + "同名路8号", CITY_PREFIX + "德清县" + aishan["name"] + "同名路8号"}
    assert run(gaz, aishan["name"] + "独有路9号").passes == ["exact"]  # only one county completes it


def test_should_still_answer_exactly_beside_an_abolished_township_of_the_same_name(conn, reference):
    b = Builder(conn)
    aishan = b.division(WUXING_AISHAN)
    conn.execute(text("INSERT INTO divisions (level, name, full_name, parent_id, status) "
                      "VALUES ('township', :n, :n, :p, 'abolished')"), {"n": aishan["name"], "p": aishan["parent_id"]})
    b.address(LONGTING, street=b.place("独有路", WUXING_AISHAN), number="9号")
    gaz = load_gazetteer(conn)
    assert gaz.township_counties()[aishan["name"]] == ("吴兴区",)
    assert run(gaz, aishan["name"] + "独有路9号").passes == ["exact"]
