"""Re-parenting (改隶): addresses and villages moved to another division, and the derived codes and
texts re-derived after a division is renamed, re-coded or moved. Identifiers never change.

The rules, in one place (the adjustments, the inspections' apply and any future editor tool call
these functions; none of them writes addresses another way):

- **An address moved to another village** keeps its `id`, gets the next local sequence of its new
  village (after the highest sequence the village ever used, former codes included, so a code is
  never reused), hence a new code `village code + 8-digit sequence` (`registry.addresses.address_code`);
  its old code keeps resolving through `address_codes`.
- **An address whose village was renamed, re-coded or moved** keeps its local sequence; only the
  village-code prefix of its code changes (the old code again kept in `address_codes`). Should the
  new code already belong to another address (a code once used is never reused), the address gets
  the village's next sequence instead.
- **The standard text** (`full_text`) is recomposed from today's division chain by the one
  composer (`registry.loading.compose.FastComposer` over `registry.text.compose_address`).
- **A village moved to another township** (`move_villages`) gets the 12-digit code
  `new township code + its own 3-digit suffix`; when that code is taken (a current code of another
  division, or a former one: codes are never reused), the next free suffix in the same range
  (001–199 居委会/社区, 200–399 村委会) is used. An approval document that names the new codes
  passes them explicitly (`codes=`), and they are checked the same way.

Every write is an ordinary UPDATE, so the history triggers version the rows, and everything is
set-based: one UPDATE per table whatever the number of rows (about a second for 100k addresses,
most of it composing the texts in Python).
"""
from __future__ import annotations

import logging
from typing import Iterable

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from registry.errors import Conflict, InvalidQuery, NotFound
from registry.faults import checkpoint
from registry.loading.base import Stager, copy_text
from registry.loading.compose import FastComposer

log = logging.getLogger(__name__)

# The village code an address code derives from (the loader's rule: registry/loading/address_finish.py).
VILLAGE_CODE_SQL = "coalesce({d}.nbs_code, {d}.mca_code, {d}.id::text)"
# 3-digit village suffix ranges: 001–199 居委会/社区, 200–399 村委会.
SUFFIX_RANGES = ((1, 199), (200, 399))

_ADDRESS_CONTEXT = f"""
    SELECT a.id, a.street_id, a.compound_id, a.group_no, a.number, a.building, a.unit, a.room,
           v.name AS village, t.name AS township, c.name AS county,
           st.name AS street, cp.name AS compound, cp.category AS compound_category,
           {VILLAGE_CODE_SQL.format(d='v')} AS village_code
    FROM {{source}} m
    JOIN addresses a ON a.id = m.address_id
    JOIN divisions v ON v.id = {{village}}
    LEFT JOIN divisions t ON t.id = v.parent_id
    LEFT JOIN divisions c ON c.id = t.parent_id
    LEFT JOIN place_names st ON st.id = a.street_id
    LEFT JOIN place_names cp ON cp.id = a.compound_id
"""


def _compose_rows(rows: Iterable) -> Iterable[tuple[int, str]]:
    """(address id, standard text) for rows of `_ADDRESS_CONTEXT`."""
    composer = FastComposer()
    heads: dict[tuple, str] = {}
    for r in rows:
        natural = r.compound_category == "natural_village"
        names = dict(county=r.county, township=r.township, village=r.village, street=r.street,
                     compound=r.compound if r.compound and not natural else None,
                     natural_village=r.compound if natural else None, group=r.group_no or None)
        parts = dict(number=r.number or None, building=r.building or None, unit=r.unit or None,
                     room=r.room or None)
        if r.street and r.compound and not natural:
            yield r.id, composer.full(names, parts)  # the number sits in the middle
            continue
        key = tuple(names.values())
        head = heads.get(key)
        if head is None:
            head = heads[key] = composer.head(**names)
        # The stored number is already the standard form (the loader's `HouseNumber.standard`).
        yield r.id, head + (r.number or "") + composer.tail(parts["building"], parts["unit"], parts["room"])


def _stage(conn: Connection, table: str, columns: str, lines: Iterable[str]) -> None:
    stager = Stager(conn, table, columns.split(", "))
    try:
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= 5000:
                stager.write(batch)
                batch = []
        stager.write(batch)
    except BaseException as exc:
        stager.close(exc)
        raise
    stager.close()


def _temp(conn: Connection, name: str, columns: str) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({columns}) ON COMMIT DROP")


def _next_seq_base(conn: Connection, table: str) -> None:
    """Adds `base` to a temp table with a `division_id` column: the highest local sequence the
    village ever used (current addresses and former codes under its current code)."""
    conn.exec_driver_sql(f"""
        UPDATE {table} b SET base = greatest(
            coalesce((SELECT max(a.local_seq) FROM addresses a WHERE a.division_id = b.division_id), 0),
            coalesce((SELECT max(substr(c.code, length(d.code) + 1))::bigint FROM address_codes c
                      WHERE c.code >= d.code AND c.code < lpad((d.code::numeric + 1)::text, length(d.code), '0')
                        AND length(c.code) = length(d.code) + 8), 0))
        FROM (SELECT id, {VILLAGE_CODE_SQL.format(d='divisions')} AS code FROM divisions) d
        WHERE d.id = b.division_id""")


def _keep_old_codes(conn: Connection, source: str) -> None:
    checkpoint("reparent.keep_old_codes")
    conn.exec_driver_sql(f"""
        INSERT INTO address_codes (code, address_id, valid_from, valid_to)
        SELECT a.code, a.id, a.valid_from, now() FROM addresses a JOIN {source} s ON s.address_id = a.id
        WHERE a.code IS DISTINCT FROM s.code
        ON CONFLICT (code) DO NOTHING""")


def _write(conn: Connection, source: str, change_set_id: int, *, with_division: bool) -> int:
    division = "division_id = s.division_id, " if with_division else ""
    checkpoint("reparent.write")
    try:
        with conn.begin_nested():
            return conn.execute(text(f"""
                UPDATE addresses a SET {division}code = s.code, local_seq = s.local_seq,
                       full_text = s.full_text, change_set_id = :cs
                FROM {source} s WHERE a.id = s.address_id"""), {"cs": change_set_id}).rowcount
    except IntegrityError as exc:
        detail = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
        raise Conflict(f"改隶后地址与目标村社区中已有地址重复 / a moved address would duplicate an address "
                       f"already in its new village ({detail})", parameter="moves") from None


def move_addresses(conn: Connection, moves: dict[int, int], *, change_set_id: int) -> int:
    """Move addresses (id → new village division id); returns how many changed village.

    Ids are kept; each moved address gets the next local sequence of its new village, a code
    derived from it, its old code kept resolving, and its text recomposed from today's chain."""
    if not moves:
        return 0
    ids, targets = list(moves), [moves[i] for i in moves]
    _temp(conn, "rp_moves", "address_id bigint PRIMARY KEY, division_id bigint NOT NULL")
    conn.execute(text("INSERT INTO rp_moves SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:divs AS bigint[]))"),
                 {"ids": ids, "divs": targets})
    missing = conn.exec_driver_sql("""
        SELECT m.address_id FROM rp_moves m LEFT JOIN addresses a ON a.id = m.address_id
        WHERE a.id IS NULL ORDER BY 1 LIMIT 5""").scalars().all()
    if missing:
        raise NotFound(f"地址 id {', '.join(map(str, missing))} 不存在 / no address with id "
                       f"{', '.join(map(str, missing))}", parameter="moves")
    bad = conn.exec_driver_sql("""
        SELECT DISTINCT m.division_id FROM rp_moves m LEFT JOIN divisions d ON d.id = m.division_id
        WHERE d.id IS NULL OR d.level <> 'village' OR d.status <> 'active' ORDER BY 1 LIMIT 5""").scalars().all()
    if bad:
        raise InvalidQuery(f"目标区划 {', '.join(map(str, bad))} 不是现行的村/社区 / target division "
                           f"{', '.join(map(str, bad))} is not an active village or community", parameter="moves")
    conn.exec_driver_sql("""
        DELETE FROM rp_moves m USING addresses a WHERE a.id = m.address_id AND a.division_id = m.division_id""")
    _temp(conn, "rp_base", "division_id bigint PRIMARY KEY, code text, base bigint")
    conn.exec_driver_sql(f"""
        INSERT INTO rp_base (division_id, code, base)
        SELECT d.id, {VILLAGE_CODE_SQL.format(d='d')}, 0 FROM divisions d
        WHERE d.id IN (SELECT DISTINCT division_id FROM rp_moves)""")
    _next_seq_base(conn, "rp_base")
    rows = conn.execute(text(_ADDRESS_CONTEXT.format(source="rp_moves", village="m.division_id")
                             + " ORDER BY a.id")).all()
    _temp(conn, "rp_new", "address_id bigint PRIMARY KEY, division_id bigint, code text, local_seq integer, "
                          "full_text text")
    seq: dict[int, int] = {}
    base = dict(conn.exec_driver_sql("SELECT division_id, base FROM rp_base").all())
    targets_by_id = dict(conn.exec_driver_sql("SELECT address_id, division_id FROM rp_moves").all())
    codes = dict(conn.exec_driver_sql("SELECT division_id, code FROM rp_base").all())

    def lines():
        from registry.addresses import address_code

        composed = dict(_compose_rows(rows))
        for r in rows:
            division = targets_by_id[r.id]
            n = seq[division] = seq.get(division, base[division]) + 1
            yield (f"{r.id}\t{division}\t{copy_text(address_code(codes[division], n))}\t{n}\t"
                   f"{copy_text(composed[r.id])}\n")

    checkpoint("reparent.stage")
    _stage(conn, "rp_new", "address_id, division_id, code, local_seq, full_text", lines())
    conn.exec_driver_sql("ANALYZE rp_new")
    _keep_old_codes(conn, "rp_new")
    moved = _write(conn, "rp_new", change_set_id, with_division=True)
    log.info("moved %d addresses to %d villages (change set %d)", moved, len(base), change_set_id)
    return moved


def rederive_addresses(conn: Connection, division_ids: Iterable[int], *, change_set_id: int) -> int:
    """Re-derive code and text of every address under the given divisions (after a rename, a
    re-code or a move of a division); returns how many addresses changed."""
    ids = sorted(set(division_ids))
    if not ids:
        return 0
    _temp(conn, "rp_scope", "address_id bigint PRIMARY KEY")
    conn.execute(text("""
        WITH RECURSIVE tree AS (
            SELECT id FROM divisions WHERE id = ANY(CAST(:ids AS bigint[]))
            UNION SELECT d.id FROM divisions d JOIN tree ON d.parent_id = tree.id)
        INSERT INTO rp_scope SELECT a.id FROM addresses a WHERE a.division_id IN (SELECT id FROM tree)"""),
                 {"ids": ids})
    rows = conn.execute(text(_ADDRESS_CONTEXT.format(source="rp_scope", village="a.division_id")
                             + " ORDER BY a.id")).all()
    _temp(conn, "rp_new", "address_id bigint PRIMARY KEY, division_id bigint, code text, local_seq integer, "
                          "full_text text")
    seqs = dict(conn.exec_driver_sql(
        "SELECT a.id, a.local_seq FROM addresses a JOIN rp_scope s ON s.address_id = a.id").all())
    current = dict(conn.exec_driver_sql(
        "SELECT a.id, a.full_text || '\t' || a.code FROM addresses a JOIN rp_scope s ON s.address_id = a.id").all())

    divisions_of = dict(conn.exec_driver_sql(
        "SELECT a.id, a.division_id FROM addresses a JOIN rp_scope s ON s.address_id = a.id").all())

    def lines():
        from registry.addresses import address_code

        for (address_id, full_text), r in zip(_compose_rows(rows), rows):
            code = address_code(r.village_code, seqs[address_id])
            if current[address_id] == f"{full_text}\t{code}":
                continue
            yield (f"{address_id}\t{divisions_of[address_id]}\t{copy_text(code)}\t{seqs[address_id]}\t"
                   f"{copy_text(full_text)}\n")

    checkpoint("reparent.stage")
    _stage(conn, "rp_new", "address_id, division_id, code, local_seq, full_text", lines())
    conn.exec_driver_sql("ANALYZE rp_new")
    checkpoint("reparent.codes_taken")
    # A derived code that another address holds (a code is never reused): the next sequence.
    # (Anti-joins, not NOT IN: planned as hash joins whatever the number of rows.)
    taken = conn.exec_driver_sql("""
        SELECT n.address_id FROM rp_new n JOIN address_codes c ON c.code = n.code AND c.address_id <> n.address_id
        UNION
        SELECT n.address_id FROM rp_new n JOIN addresses a ON a.code = n.code AND a.id <> n.address_id
        LEFT JOIN rp_new o ON o.address_id = a.id WHERE o.address_id IS NULL""").scalars().all()
    if taken:
        _temp(conn, "rp_base", "division_id bigint PRIMARY KEY, code text, base bigint")
        conn.execute(text(f"""
            INSERT INTO rp_base (division_id, code, base)
            SELECT d.id, {VILLAGE_CODE_SQL.format(d='d')}, 0 FROM divisions d
            WHERE d.id IN (SELECT division_id FROM rp_new WHERE address_id = ANY(CAST(:ids AS bigint[])))"""),
                     {"ids": taken})
        _next_seq_base(conn, "rp_base")
        conn.execute(text("""
            UPDATE rp_new n SET local_seq = q.seq, code = b.code || lpad(q.seq::text, 8, '0')
            FROM (SELECT n.address_id, b.base + row_number() OVER (PARTITION BY n.division_id ORDER BY n.address_id)
                         AS seq
                  FROM rp_new n JOIN rp_base b ON b.division_id = n.division_id
                  WHERE n.address_id = ANY(CAST(:ids AS bigint[]))) q
            JOIN rp_new m ON m.address_id = q.address_id JOIN rp_base b ON b.division_id = m.division_id
            WHERE n.address_id = q.address_id"""), {"ids": taken})
    _keep_old_codes(conn, "rp_new")
    changed = _write(conn, "rp_new", change_set_id, with_division=False)
    log.info("re-derived %d addresses under %d divisions (change set %d)", changed, len(ids), change_set_id)
    return changed


# -- villages -------------------------------------------------------------------------------------
def code_taken(conn: Connection, code: str, *, other_than: int | None = None) -> bool:
    """A code is taken when another division carries it now or ever carried it."""
    return bool(conn.execute(text("""
        SELECT EXISTS (SELECT 1 FROM divisions WHERE (nbs_code = :c OR mca_code = :c) AND id <> :me)
            OR EXISTS (SELECT 1 FROM division_codes WHERE code = :c AND division_id <> :me)"""),
        {"c": code, "me": other_than or 0}).scalar_one())


def village_code_under(conn: Connection, township_code: str, suffix: str, *, village_id: int,
                       reserved: set[str] | None = None) -> str:
    """The 12-digit code of a village moved under `township_code`: the township code + the
    village's own suffix, or the next free suffix of the same range when that is taken."""
    reserved = reserved or set()
    n = int(suffix)
    low, high = next(((lo, hi) for lo, hi in SUFFIX_RANGES if lo <= n <= hi), (n, 999))
    for candidate in [n, *range(low, high + 1)]:
        code = f"{township_code}{candidate:03d}"
        if code not in reserved and not code_taken(conn, code, other_than=village_id):
            return code
    raise Conflict(f"乡级区划 {township_code} 下已无可用的村级代码 / no free village code left under {township_code}",
                   parameter="codes")


def record_former_code(conn: Connection, division_id: int, code: str, authority: str, *,
                       valid_to) -> None:
    """Keep a code a division stops carrying resolvable (division_codes)."""
    conn.execute(text("""
        UPDATE division_codes SET valid_to = :to
        WHERE division_id = :id AND code = :code AND authority = :auth AND valid_to IS NULL"""),
        {"id": division_id, "code": code, "auth": authority, "to": valid_to})
    conn.execute(text("""
        INSERT INTO division_codes (code, authority, valid_from, division_id, valid_to)
        SELECT :code, :auth, CAST(:to AS date), :id, :to  -- start unknown: recorded as the end
        WHERE NOT EXISTS (SELECT 1 FROM division_codes WHERE code = :code AND authority = :auth
                          AND division_id = :id)"""),
        {"id": division_id, "code": code, "auth": authority, "to": valid_to})


def move_villages(conn: Connection, village_ids: Iterable[int], township_id: int, *, change_set_id: int,
                  codes: dict[int, str] | None = None, effective=None,
                  rederive: bool = True) -> dict[int, tuple[str | None, str]]:
    """Move villages under another township, re-deriving their 12-digit codes (see the module's
    rule) and then their addresses; returns {village id: (old code, new code)}."""
    from datetime import date as _date

    ids = list(dict.fromkeys(village_ids))
    codes = dict(codes or {})
    township = conn.execute(text("SELECT id, level, nbs_code, mca_code FROM divisions WHERE id = :id"),
                            {"id": township_id}).first()
    if township is None or township.level != "township":
        raise InvalidQuery(f"区划 {township_id} 不是乡级区划 / division {township_id} is not a township",
                           parameter="to")
    t_code = township.nbs_code or township.mca_code
    changes: dict[int, tuple[str | None, str]] = {}
    reserved: set[str] = set()
    rows = conn.execute(text("SELECT id, level, nbs_code, parent_id FROM divisions WHERE id = ANY(CAST(:ids AS bigint[]))"),
                        {"ids": ids}).all()
    by_id = {r.id: r for r in rows}
    for vid in ids:
        r = by_id.get(vid)
        if r is None or r.level != "village":
            raise InvalidQuery(f"区划 {vid} 不是村/社区 / division {vid} is not a village or community",
                               parameter="villages")
        new = codes.get(vid)
        if new is not None:
            if not (len(new) == 12 and new.isdigit() and new.startswith(t_code)):
                raise InvalidQuery(f"村级代码 {new} 应为 {t_code} 开头的 12 位数字 / village code {new} must be 12 "
                                   f"digits starting with {t_code}", parameter="codes")
            if new in reserved or code_taken(conn, new, other_than=vid):
                raise Conflict(f"村级代码 {new} 已被使用 / village code {new} is already taken", parameter="codes")
        elif r.nbs_code and r.nbs_code.startswith(t_code):
            new = r.nbs_code  # already under this township's code
        else:
            new = village_code_under(conn, t_code, (r.nbs_code or "200")[-3:], village_id=vid, reserved=reserved)
        reserved.add(new)
        changes[vid] = (r.nbs_code, new)
    # Two steps so that codes swapped between villages never collide mid-way.
    for vid, (old, new) in changes.items():
        if old and old != new:
            record_former_code(conn, vid, old, "nbs2023", valid_to=effective or _date.today())
            checkpoint("reparent.former_code")
    checkpoint("reparent.villages")
    conn.execute(text("""
        UPDATE divisions d SET parent_id = :t, nbs_code = n.code, change_set_id = :cs
        FROM unnest(CAST(:ids AS bigint[]), CAST(:codes AS text[])) AS n(id, code) WHERE d.id = n.id"""),
        {"t": township_id, "cs": change_set_id, "ids": list(changes), "codes": [c[1] for c in changes.values()]})
    conn.execute(text("""
        INSERT INTO division_codes (code, authority, valid_from, division_id)
        SELECT n.code, 'nbs2023', CAST(:eff AS date), n.id
        FROM unnest(CAST(:ids AS bigint[]), CAST(:codes AS text[])) AS n(id, code)
        ON CONFLICT DO NOTHING"""),
        {"eff": effective or _date.today(), "ids": list(changes), "codes": [c[1] for c in changes.values()]})
    checkpoint("reparent.village_codes")
    if rederive:
        rederive_addresses(conn, list(changes), change_set_id=change_set_id)
    return changes
