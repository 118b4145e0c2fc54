"""The named entities of the gazetteer, read from PostGIS: divisions (with their former names and
the successors of abolished ones), place names with their aliases, facilities and heritage items;
and how each one enters the name index (`index_*`).
"""
from __future__ import annotations

from collections import Counter

import numpy as np
from sqlalchemy import Connection, text

from registry.search.gazetteer import AddressStore, Div, Gazetteer, Item, Place
from registry.text import village_name_variants


def float_or_nan(v) -> float:
    """A coordinate read from the database: NaN for NULL."""
    return float(v) if v is not None else float("nan")


# -- divisions ---------------------------------------------------------------------------------
def load_divisions(conn: Connection):
    rows = conn.execute(text("""
        SELECT id, level, name, full_name, parent_id, nbs_code, mca_code, status,
               ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
        FROM divisions
    """)).all()
    divisions: dict[int, Div] = {}
    for r in rows:
        divisions[r.id] = Div(r.id, r.level, r.name, r.full_name, r.parent_id, r.mca_code or r.nbs_code or "",
                              r.status, lon=float_or_nan(r.lon), lat=float_or_nan(r.lat),
                              nbs_code=r.nbs_code or "", mca_code=r.mca_code or "")
    finish_divisions(divisions)
    # Former names: earlier versions of a division with another name …
    former: dict[int, tuple[int, list[tuple[str, str]]]] = {}
    for r in conn.execute(text("""
        SELECT DISTINCT h.id, h.name, h.full_name FROM divisions_history h JOIN divisions d ON d.id = h.id
        WHERE h.name <> d.name
    """)).all():
        if r.id in divisions and divisions[r.id].status == "active":
            former.setdefault(r.id, (r.id, []))[1].append((r.full_name, r.name))
    # … villages moved to another township by an adjustment, under their former township's name
    # (德清县乾元镇联合村 for 联合村, now under 康乾街道) …
    for r in conn.execute(text("""
        SELECT DISTINCT h.id, p.name AS township FROM divisions_history h JOIN divisions d ON d.id = h.id
        JOIN divisions p ON p.id = h.parent_id
        WHERE d.level = 'village' AND h.parent_id IS DISTINCT FROM d.parent_id
    """)).all():
        d = divisions.get(r.id)
        if d is not None and d.status == "active":
            former.setdefault(r.id, (r.id, []))[1].append((r.township + d.full_name, r.township + d.name))
    # … and abolished divisions, resolved to the division that took over their children.
    successors: dict[int, int] = {}
    votes: dict[int, Counter] = {}
    for r in conn.execute(text("""
        SELECT h.parent_id AS old_id, d.parent_id AS new_id, count(*) AS n
        FROM divisions_history h JOIN divisions d ON d.id = h.id
        WHERE h.parent_id IN (SELECT id FROM divisions WHERE status = 'abolished')
          AND d.parent_id IS DISTINCT FROM h.parent_id
        GROUP BY 1, 2
    """)).all():
        votes.setdefault(r.old_id, Counter())[r.new_id] += r.n
    for old_id, c in votes.items():
        new_id = c.most_common(1)[0][0]
        if new_id in divisions and divisions[new_id].status == "active":
            successors[old_id] = new_id
            old = divisions[old_id]
            former.setdefault(old_id, (new_id, []))[1].append((old.full_name, old.name))
    return divisions, successors, former


def finish_divisions(divisions: dict[int, Div]) -> None:
    for d in divisions.values():
        chain, cur, seen = [], d, set()
        while cur is not None and cur.id not in seen:
            seen.add(cur.id)
            chain.append(cur.id)
            cur = divisions.get(cur.parent_id) if cur.parent_id else None
        d.chain = tuple(chain)
        names = [divisions[i].name for i in reversed(chain)]
        d.prefix = "".join(names)


def division_forms(d: Div) -> list[tuple[str, str]]:
    return division_forms_of(d.full_name, d) + ([(d.name, "name")] if d.name != d.full_name else [])


def division_forms_of(full_name: str, d: Div | None) -> list[tuple[str, str]]:
    level = d.level if d is not None else ""
    forms: list[tuple[str, str]] = []
    if level == "village":
        variants = village_name_variants(full_name)
        for i, v in enumerate(variants):
            how = "full" if v == full_name else ("name" if d is not None and v == d.name else None)
            if how is None:
                if any(v.endswith(s) for s in ("村", "社区", "居委会", "委员会", "村委会")):
                    how = "variant"
                elif full_name.endswith("居委会"):
                    # a community's bare name, as a specific part (月河街道浮星桥 → 浮星桥社区), below a
                    # hamlet or street named so
                    how = "specific"
                else:
                    continue  # the bare 祝良 of 祝良村: names far more hamlets and streets than villages
            forms.append((v, how))
        return forms
    forms.append((full_name, "name"))
    if level == "township" and full_name.endswith("街道"):
        forms.append((full_name + "办事处", "variant"))
    for suffix in ("街道", "省", "市", "区", "县", "镇", "乡"):
        if full_name.endswith(suffix) and len(full_name) - len(suffix) >= 2:
            forms.append((full_name[: -len(suffix)], "short"))
            break
    return forms


def index_division(gaz: Gazetteer, d: Div) -> None:
    if d.status != "active":
        return
    for form, how in division_forms(d):
        gaz.names.add("division", d.id, form, how)


# -- places ------------------------------------------------------------------------------------
def load_places(conn: Connection, ids: list[int] | None = None):
    where = "WHERE p.status NOT IN ('retired', 'abolished')" if ids is None else "WHERE p.id = ANY(:ids)"
    rows = conn.execute(text(f"""
        SELECT p.id, p.category, p.name, p.pinyin, p.division_id, p.county_id, p.status,
               ST_X(ST_PointOnSurface(p.geom)) AS lon, ST_Y(ST_PointOnSurface(p.geom)) AS lat
        FROM place_names p {where}
    """), {"ids": ids or []}).all()
    places = {
        r.id: Place(r.id, r.category, r.name, r.division_id, r.county_id, r.status,
                    float_or_nan(r.lon), float_or_nan(r.lat), r.pinyin)
        for r in rows
    }
    where_a = "" if ids is None else "WHERE place_name_id = ANY(:ids)"
    aliases: dict[int, list[tuple[str, str, str]]] = {}
    for r in conn.execute(text(f"""
        SELECT place_name_id, name, kind, used_from, used_until FROM place_name_aliases {where_a}
        ORDER BY id
    """), {"ids": ids or []}).all():
        period = ""
        if r.used_from or r.used_until:
            period = f"{r.used_from or ''}–{r.used_until or ''}"
        aliases.setdefault(r.place_name_id, []).append((r.name, r.kind, period))
    return places, aliases


def index_place(gaz: Gazetteer, p: Place, aliases) -> None:
    if p.status in ("retired", "abolished"):
        return
    gaz.names.add("place", p.id, p.name, "name")
    for name, kind, period in aliases:
        gaz.names.add("place", p.id, name, kind if kind in ("former", "alias", "abbreviation") else "alias", period)


def place_divisions(places: dict[int, Place], divisions: dict[int, Div], store: AddressStore) -> None:
    village = store.col["village"]
    found: dict[int, set[int]] = {}
    for col in ("street", "compound"):
        c = store.col[col]
        m = c > 0
        if not m.any():
            continue
        pairs = np.unique(c[m].astype(np.int64) * (1 << 32) + village[m].astype(np.int64))
        for cid, vid in zip((pairs >> 32).tolist(), (pairs & 0xFFFFFFFF).tolist()):
            found.setdefault(cid, set()).add(vid)
    for p in places.values():
        p.divisions = place_division_set(p, found.get(p.id, ()), divisions)


def place_division_set(p: Place, villages, divisions: dict[int, Div]) -> frozenset:
    out: set[int] = set()
    for vid in villages:
        d = divisions.get(vid)
        out.update(d.chain if d is not None else (vid,))
    for did in (p.division_id, p.county_id):
        d = divisions.get(did)
        if d is not None:
            out.update(d.chain)
    return frozenset(out)


# -- facilities and heritage -------------------------------------------------------------------
def load_items(conn: Connection, kind: str | None = None, ids: list[int] | None = None):
    facilities: dict[int, Item] = {}
    heritage: dict[int, Item] = {}
    params = {"ids": ids or []}
    if kind in (None, "facility"):
        where = "WHERE status = 'active'" if ids is None else "WHERE id = ANY(:ids)"
        for r in conn.execute(text(f"""
            SELECT id, category, name, division_id, address_text, status,
                   ST_X(geom) AS lon, ST_Y(geom) AS lat FROM facilities {where}
        """), params).all():
            it = Item(r.id, "facility", r.category, r.name, r.division_id, float_or_nan(r.lon), float_or_nan(r.lat),
                      r.address_text)
            if r.status == "active":
                facilities[r.id] = it
    if kind in (None, "heritage"):
        where = "WHERE status NOT IN ('delisted', 'retired')" if ids is None else "WHERE id = ANY(:ids)"
        for r in conn.execute(text(f"""
            SELECT id, category, name, level, division_id, former_names, status,
                   ST_X(geom) AS lon, ST_Y(geom) AS lat FROM heritage_items {where}
        """), params).all():
            if r.status in ("delisted", "retired"):
                continue
            heritage[r.id] = Item(r.id, "heritage", r.category, r.name, r.division_id, float_or_nan(r.lon), float_or_nan(r.lat),
                                  None, r.level, tuple(r.former_names or ()))
    return facilities, heritage


def index_item(gaz: Gazetteer, it: Item) -> None:
    gaz.names.add(it.kind, it.id, it.name, "name")
    rest = item_name_less_prefix(gaz, it)
    if rest:
        gaz.names.add(it.kind, it.id, rest, "specific")  # 婚姻登记处 for 吴兴区婚姻登记处
    for name in it.former:
        gaz.names.add(it.kind, it.id, name, "former")


def item_name_less_prefix(gaz: Gazetteer, it: Item) -> str | None:
    """A facility's name less the division name it starts with (吴兴区婚姻登记处 → 婚姻登记处,
    月河街道浮星桥社区居家养老服务照料中心 → 浮星桥社区居家养老服务照料中心): people leave it out."""
    best = ""
    for did in gaz.chain_of(it.division_id) if it.division_id else ():
        d = gaz.divisions.get(did)
        if d is None or d.level == "province":
            continue
        for form in {d.name, d.full_name}:
            if len(form) > len(best) and it.name.startswith(form):
                best = form
    rest = it.name[len(best):]
    return rest if best and len(rest) >= 3 else None
