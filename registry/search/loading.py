"""Build the gazetteer from PostGIS: one consistent snapshot, the named entities
(entity_loading.py) read first, then the addresses (address_loading.py) streamed in while a
thread builds the name index; and the division codes the engine settles a filter with.
"""
from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Connection, text

from registry.search.address_loading import load_addresses
from registry.search.entity_loading import (division_forms_of, index_division, index_item, index_place,
                                            load_divisions, load_items, load_places, place_divisions)
from registry.search.gazetteer import Div, Gazetteer
from registry.search.names import NameIndex
from registry.settings import get_settings

log = logging.getLogger(__name__)


def load_gazetteer(conn: Connection, *, text_keys: bool | str = True) -> Gazetteer:
    """Read everything the engine needs from the registry (one consistent snapshot if the
    connection is not already inside a transaction with writes). The name index is built in a
    second thread while the addresses stream in (that thread computes pinyin; this one mostly
    waits for the server). `text_keys`: build the exact-text fast path now (True), in a
    background thread ("thread": the service, so that start-up is not delayed) or not at all."""
    t0 = time.perf_counter()
    own_snapshot = not conn.in_transaction()
    if own_snapshot:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")  # one snapshot for every read
    snapshot_time = time.time()  # before the snapshot is taken: every change announced earlier is in it
    snapshot = conn.execute(text("SELECT pg_current_snapshot()::text")).scalar_one()
    divisions, successors, former = load_divisions(conn)
    places, aliases = load_places(conn)
    facilities, heritage = load_items(conn)
    names = NameIndex()
    names.dialect = get_settings().search_dialect_pinyin  # REGISTRY_SEARCH_DIALECT_PINYIN
    gaz = Gazetteer(divisions, places, facilities, heritage, names, None, successors)  # type: ignore[arg-type]
    gaz.by_code = _codes(divisions)
    gaz.snapshot, gaz.snapshot_time = snapshot, snapshot_time
    add_former_codes(conn, gaz.by_code, divisions)
    failure: list[BaseException] = []

    def build_names() -> None:
        try:
            for d in divisions.values():
                index_division(gaz, d)
            for old_id, (new_id, old_names) in former.items():
                for name, note in old_names:
                    for form, _how in division_forms_of(name, divisions.get(new_id)):
                        names.add("division", new_id, form, "former", note)
            for p in places.values():
                index_place(gaz, p, aliases.get(p.id, ()))
            for it in (*facilities.values(), *heritage.values()):
                index_item(gaz, it)
        except BaseException as exc:  # pragma: no cover - surfaced below
            failure.append(exc)

    t1 = time.perf_counter()
    worker = threading.Thread(target=build_names, name="gazetteer-names")
    worker.start()
    try:
        gaz.addresses = load_addresses(conn, parallel=own_snapshot)
    finally:
        t2 = time.perf_counter()
        worker.join()
    if failure:
        raise failure[0]
    t3 = time.perf_counter()
    place_divisions(places, divisions, gaz.addresses)
    if text_keys == "thread":
        threading.Thread(target=gaz.addresses.build_text_keys, name="gazetteer-text-keys", daemon=True).start()
    elif text_keys:
        gaz.addresses.build_text_keys()
    gaz.load_seconds = time.perf_counter() - t0
    log.info("gazetteer loaded in %.1f s (entities %.1f, addresses %.1f, then names %.1f more, places %.1f): %s",
             gaz.load_seconds, t1 - t0, t2 - t1, t3 - t2, time.perf_counter() - t3, gaz.counts())
    return gaz


def _codes(divisions: dict[int, Div]) -> dict[str, list]:
    """code -> its readings under each authority (an active division preferred), settled per
    request by `registry.divisions.settle_code`, the rule the database lookups use."""
    from registry.authorities import AUTHORITIES
    from registry.divisions import CodeMatch

    out: dict[str, list] = {}
    for authority in AUTHORITIES:
        best: dict[str, Div] = {}
        for d in divisions.values():
            c = d.mca_code if authority == "mca2025" else d.nbs_code
            if c and (c not in best or (d.status == "active" and best[c].status != "active")):
                best[c] = d
        for c, d in best.items():
            out.setdefault(c, []).append(CodeMatch(d.id, authority, c, d.name, d.level, d.status))
    return out


def add_former_codes(conn: Connection, by_code: dict[str, list], divisions: dict[int, Div]) -> None:
    """Codes a division carried before an adjustment (division_codes) that no division carries now
    read as that division, so a filter by an old code still finds its addresses."""
    from registry.divisions import CodeMatch

    for r in conn.execute(text("SELECT DISTINCT ON (code, authority) code, authority, division_id FROM division_codes "
                               "ORDER BY code, authority, valid_from DESC")).all():
        d = divisions.get(r.division_id)
        if d is None or r.code in by_code or r.authority not in ("nbs2023", "mca2025"):
            continue
        by_code.setdefault(r.code, []).append(CodeMatch(d.id, r.authority, r.code, d.name, d.level, d.status))
