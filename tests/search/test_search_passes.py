"""The engine's shared work (issue 11) changes no answer: the bounds remembered for a query with
many candidates are the direct bounds, and a second scan that reuses the first one's edit
readings finds the same matches as a scan of its own."""
from __future__ import annotations

from registry.search.engine import BOUNDS_MEMO_FROM, Filters, _Bounds, _division_set, _upper_bound, interpret
from registry.search.parse import scan
from registry.search.query import prepare

# a query read as many names (家 is in hundreds of them), with a typo and a door
QUERIES = ["吴兴区王家莲路428号", "长兴县吴家从路59号", "吴兴区爱山街道人敏路123号", "德清县回龙龙新村8幢1单元402室"]


def _matches(gaz, q: str, fuzzy: str = "gaps", readings=None):
    pq = prepare(q)
    return pq, scan(pq, gaz.names, fuzzy, readings)


def test_should_remember_the_same_bounds_as_it_computes(city_gaz):
    for q in QUERIES:
        pq, matches = _matches(city_gaz, q, "all")
        by_weight = sorted(matches, key=lambda m: (-m.weight, -m.score))
        divs = [m for m in by_weight if m.kind == "division"][:40]
        places = [m for m in by_weight if m.kind == "place"][:40]
        door_atoms = sum(p.end - p.start for p in pq.numbers)
        remembered = _Bounds(pq, door_atoms, divs, places)
        for m in matches:
            dset = _division_set(city_gaz, m.kind, m.eid)
            for doors in (True, False):
                direct = _upper_bound(pq, m, dset, doors, door_atoms, divs, places)
                assert remembered(pq, m, dset, doors, door_atoms, divs, places) == direct, (q, m.name)


def test_should_find_the_same_matches_with_the_first_pass_edit_readings(city_gaz):
    for q in QUERIES:
        readings: dict = {}
        _, first = _matches(city_gaz, q, "gaps", readings)
        _, shared = _matches(city_gaz, q, "all", readings)
        _, alone = _matches(city_gaz, q, "all")
        key = lambda m: (m.start, m.end, m.entry, m.score, m.mode, m.edits)  # noqa: E731
        assert sorted(map(key, shared)) == sorted(map(key, alone)), q
        assert readings, "the passes read spans with edits"


def test_should_answer_the_same_with_the_doors_of_the_first_pass(city_gaz):
    for q in QUERIES:
        pq, matches = _matches(city_gaz, q, "all")
        doors_of: dict = {}
        once = interpret(city_gaz, pq, matches, Filters(), doors_of)
        again = interpret(city_gaz, pq, matches, Filters(), doors_of)
        fresh = interpret(city_gaz, pq, matches, Filters())
        sig = lambda hits: [(h.kind, h.eid, h.score, h.ambiguous) for h in hits]  # noqa: E731
        assert sig(once) == sig(again) == sig(fresh), q
    assert BOUNDS_MEMO_FROM > 0
