"""The set-based half of an address load: the staged rows validated, matched and written in SQL.

Containment in the village polygon (or the nearest ancestor that has one) with a tolerance,
duplicate ids and doors, matching to the registry by id or natural key, then one INSERT of the new
rows (codes allocated per village), one UPDATE of the changed ones (the history triggers keep the
old version), and with `retire_missing` one UPDATE retiring what a full re-survey no longer lists.
`AddressLoad.finish` runs the steps in order.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from sqlalchemy import Connection, text

from registry.faults import checkpoint
from registry.loading.base import LoadReport, Timer
from registry.loading.spatial import check_containment
from registry.text import place_name_pinyin

log = logging.getLogger("registry.loading.addresses")

# Coordinates travel as integers of 1e-7 degree (~1 cm): exact, and cheap to print. x / 1e7 in
# float8 is the correctly rounded value of the decimal, the same double a text would parse to.
SCALE = 10_000_000
LON, LAT = "(s.x::float8 / 1e7::float8)", "(s.y::float8 / 1e7::float8)"
POINT = f"ST_SetSRID(ST_MakePoint({LON}, {LAT}), 4490)"


class StagedAddresses:
    """One load's staging table (`stage`) and match table (`match`), and the statements over them."""

    def __init__(self, conn: Connection, stage: str, match: str, *, report: LoadReport, options, change_set_id: int,
                 timer: Timer, progress: Callable) -> None:
        self.conn = conn
        self.stage = stage
        self.match_table = match
        self.report = report
        self.options = options
        self.change_set_id = change_set_id
        self.timer = timer
        self.progress = progress

    def x(self, sql: str, **params: Any):
        sql = sql.format(stage=self.stage, match=self.match_table, POINT=POINT, LON=LON, LAT=LAT)
        checkpoint("load.statement")
        if not log.isEnabledFor(logging.DEBUG):
            return self.conn.execute(text(sql), params)
        started = time.perf_counter()
        result = self.conn.execute(text(sql), params)
        log.debug("%.3f s  %s", time.perf_counter() - started, " ".join(sql.split())[:100])
        return result

    def create_places(self, created: list[dict]) -> None:
        """Register the places the rows named that the registry did not know (--create-places)."""
        if not created:
            return
        mapping = []
        for place in created:
            pid = self.conn.execute(text("""
                INSERT INTO place_names (category, name, pinyin, division_id, county_id, change_set_id, source)
                VALUES (:category, :name, :pinyin, :division_id, :county_id, :cs, :source) RETURNING id"""), {
                **{k: place[k] for k in ("category", "name", "division_id", "county_id")},
                "pinyin": place_name_pinyin(place["name"], natural_village=place["category"] == "natural_village"),
                "cs": self.change_set_id, "source": self.options.source,
            }).scalar_one()
            mapping.append({"placeholder": place["placeholder"], "id": pid})
        values = ", ".join(f"({m['placeholder']}, {m['id']})" for m in mapping)
        for column in ("street_id", "compound_id"):
            self.x(f"UPDATE {{stage}} s SET {column} = m.id FROM (VALUES {values}) m(placeholder, id) "
                   f"WHERE s.{column} = m.placeholder")
        self.report.places_created = len(mapping)

    def check_containment(self) -> None:
        check_containment(self.conn, self.stage, POINT, self.options.tolerance_m)

    _KEY_COLUMNS = ("division_id", "street_id", "compound_id", "group_no", "number", "building", "unit", "room")

    @classmethod
    def _key_eq(cls, a: str, b: str) -> str:
        """Natural-key equality, written as the unique index uq_addresses_natural_key is (so that
        a correction file finds its rows through that index)."""
        parts = []
        for k in cls._KEY_COLUMNS:
            if k in ("street_id", "compound_id"):
                parts.append(f"coalesce({a}.{k}, 0) = coalesce({b}.{k}, 0)")
            else:
                parts.append(f"{a}.{k} = {b}.{k}")
        return " AND ".join(parts)

    def check_duplicate_ids(self) -> None:
        self.x("""
            UPDATE {stage} s SET reason = 'duplicate_in_file', detail = json_build_object('first_row', d.first_row)::text
            FROM (SELECT addr_id, min(row_no) AS first_row FROM {stage} WHERE reason IS NULL AND addr_id IS NOT NULL
                  GROUP BY addr_id HAVING count(*) > 1) d
            WHERE s.reason IS NULL AND s.addr_id = d.addr_id AND s.row_no <> d.first_row""")

    # The same road and door (number, building, unit, room) in two villages of one township: the
    # natural keys differ (the village is part of the key), so neither is a duplicate_in_file, yet a
    # door number is unique along its road. Which row is right the loader cannot tell, and refusing
    # one would let the file's order decide: both are accepted with a `duplicate_door` warning that
    # names the other row (or the registered address) and its village. It outranks a milder warning.
    _DOOR_EQ = ("{a}.street_id = {b}.street_id AND coalesce({a}.compound_id, 0) = coalesce({b}.compound_id, 0) "
                "AND {a}.group_no = {b}.group_no AND {a}.number = {b}.number AND {a}.building = {b}.building "
                "AND {a}.unit = {b}.unit AND {a}.room = {b}.room")

    def check_duplicate_doors(self, has_match: bool) -> None:
        door = "concat(s.number, s.building, s.unit, s.room)"
        detail = f"""json_build_object('street', st.name, 'door', {door}, 'village', v.name,
                                       'other', o.other_zh, 'other_en', o.other_en, 'other_village', ov.name,
                                       'other_row', o.other_row, 'other_id', o.other_id)::text"""
        self.x(f"""
            CREATE TEMP TABLE load_addr_doors ON COMMIT DROP AS
            SELECT s.row_no, s.division_id, v.parent_id AS township_id, s.street_id, s.compound_id, s.group_no,
                   s.number, s.building, s.unit, s.room
            FROM {{stage}} s JOIN divisions v ON v.id = s.division_id
            WHERE s.reason IS NULL AND s.street_id IS NOT NULL AND s.street_id > 0""")
        in_file = self.x(f"""
            UPDATE {{stage}} s SET warn = 'duplicate_door', warn_detail = {detail}
            FROM (SELECT k.row_no, k.division_id, k.street_id, f.row_no AS other_row, NULL::bigint AS other_id, f.division_id AS other_division,
                         '第 ' || f.row_no || ' 行' AS other_zh, 'row ' || f.row_no AS other_en
                  FROM load_addr_doors k
                  CROSS JOIN LATERAL (SELECT f.row_no, f.division_id FROM load_addr_doors f
                                      WHERE f.township_id = k.township_id AND f.division_id <> k.division_id
                                        AND {self._DOOR_EQ.format(a="f", b="k")}
                                      ORDER BY f.row_no LIMIT 1) f
                  WHERE (k.township_id, k.street_id, k.number) IN (
                      SELECT township_id, street_id, number FROM load_addr_doors
                      GROUP BY 1, 2, 3 HAVING count(DISTINCT division_id) > 1)) o
            JOIN divisions v ON v.id = o.division_id JOIN divisions ov ON ov.id = o.other_division
            JOIN place_names st ON st.id = o.street_id
            WHERE s.row_no = o.row_no""").rowcount
        # a registered address of another village of the township (not one this file moves or updates)
        in_file_match = "AND NOT EXISTS (SELECT 1 FROM {match} m WHERE m.address_id = a.id)" if has_match else ""
        registered = self.x(f"""
            UPDATE {{stage}} s SET warn = 'duplicate_door', warn_detail = {detail}
            FROM (SELECT DISTINCT ON (k.row_no) k.row_no, k.division_id, k.street_id, NULL::bigint AS other_row, a.id AS other_id,
                         a.division_id AS other_division, '库中地址 ' || a.id AS other_zh,
                         'registered address ' || a.id AS other_en
                  FROM load_addr_doors k
                  JOIN addresses a ON {self._DOOR_EQ.format(a="a", b="k")} AND a.division_id <> k.division_id
                  JOIN divisions ad ON ad.id = a.division_id
                  WHERE ad.parent_id = k.township_id AND a.status = 'active' {in_file_match}
                  ORDER BY k.row_no, a.id) o
            JOIN divisions v ON v.id = o.division_id JOIN divisions ov ON ov.id = o.other_division
            JOIN place_names st ON st.id = o.street_id
            WHERE s.row_no = o.row_no AND s.warn IS DISTINCT FROM 'duplicate_door'""").rowcount
        self.x("DROP TABLE load_addr_doors")
        if in_file or registered:
            log.info("duplicate doors: %d rows against the file, %d against the registry", in_file, registered)

    def match(self) -> bool:
        """Pair staged rows with registered addresses (by id, else by natural key)."""
        any_registered = self.x("""
            SELECT EXISTS (SELECT 1 FROM addresses a WHERE a.division_id IN (
                SELECT DISTINCT division_id FROM {stage} WHERE keyed))""").scalar_one()
        has_ids = self.x("SELECT EXISTS (SELECT 1 FROM {stage} WHERE addr_id IS NOT NULL)").scalar_one()
        if not any_registered and not has_ids:
            return False
        changed = """(a.status <> 'active' OR a.full_text <> s.full_text
                      OR a.number_main IS DISTINCT FROM s.number_main
                      OR ST_X(a.geom) IS DISTINCT FROM {LON} OR ST_Y(a.geom) IS DISTINCT FROM {LAT}
                      OR a.division_id <> s.division_id OR a.street_id IS DISTINCT FROM s.street_id
                      OR a.compound_id IS DISTINCT FROM s.compound_id OR a.group_no <> s.group_no
                      OR a.number <> s.number OR a.building <> s.building OR a.unit <> s.unit OR a.room <> s.room)"""
        self.x(f"""
            CREATE UNLOGGED TABLE {{match}} WITH (autovacuum_enabled = off) AS
            SELECT s.row_no, a.id AS address_id, s.reason IS NULL AS valid, {changed} AS changed,
                   a.division_id <> s.division_id AS moved
            FROM {{stage}} s JOIN addresses a ON {self._key_eq('a', 's')}
            WHERE s.keyed AND s.addr_id IS NULL AND s.reason IS DISTINCT FROM 'duplicate_in_file'
            UNION ALL
            SELECT s.row_no, a.id, s.reason IS NULL, {changed}, a.division_id <> s.division_id
            FROM {{stage}} s JOIN addresses a ON a.id = s.addr_id
            WHERE s.addr_id IS NOT NULL AND s.reason IS DISTINCT FROM 'duplicate_in_file'""")
        if has_ids:
            # An id the registry does not know; a key that belongs to another address.
            self.x("""
                UPDATE {stage} s SET reason = 'unknown_id', detail = json_build_object('value', s.addr_id)::text
                WHERE s.reason IS NULL AND s.addr_id IS NOT NULL
                  AND NOT EXISTS (SELECT 1 FROM addresses a WHERE a.id = s.addr_id)""")
            self.x(f"""
                UPDATE {{stage}} s SET reason = 'duplicate_in_registry',
                       detail = json_build_object('other_id', a.id)::text
                FROM addresses a
                WHERE s.reason IS NULL AND s.addr_id IS NOT NULL AND a.id <> s.addr_id AND {self._key_eq('a', 's')}""")
            # Two rows (one by id, one by key) reaching the same address: the later one is refused.
            self.x("""
                UPDATE {stage} s SET reason = 'duplicate_in_file', detail = json_build_object('first_row', d.first_row)::text
                FROM (SELECT address_id, min(row_no) AS first_row FROM {match} m
                      WHERE m.valid GROUP BY address_id HAVING count(*) > 1) d
                JOIN {match} m ON m.address_id = d.address_id AND m.row_no <> d.first_row
                WHERE s.row_no = m.row_no AND s.reason IS NULL""")
            self.x("UPDATE {match} m SET valid = false FROM {stage} s WHERE s.row_no = m.row_no AND s.reason IS NOT NULL "
                   "AND m.valid")
        self.x("CREATE INDEX ON {match} (row_no)")
        self.x("ANALYZE {match}")
        return True

    def apply(self, has_match: bool) -> None:
        report, o, cs = self.report, self.options, self.change_set_id
        params = {"cs": cs, "source": o.source}
        unmatched = "NOT EXISTS (SELECT 1 FROM {match} m WHERE m.row_no = s.row_no)" if has_match else "true"
        to_insert = self.x(f"SELECT count(*) FROM {{stage}} s WHERE s.reason IS NULL AND {unmatched}").scalar_one()
        empty = not self.x("SELECT EXISTS (SELECT 1 FROM addresses)").scalar_one()
        bulk = empty and to_insert >= o.bulk_index_threshold
        dropped: list[tuple[str, str]] = []
        dropped_fks: list[tuple[str, str]] = []
        if bulk:
            dropped_fks = self._drop_foreign_keys()
            dropped = self._drop_indexes()
        # The next code of each village that gets new addresses: one probe of
        # ix_addresses_division_seq per village, and the highest former code it ever carried.
        self.x(f"""
            CREATE TEMP TABLE load_addr_base ON COMMIT DROP AS
            SELECT d.id AS division_id, d.code,
                   greatest(coalesce((SELECT max(a.local_seq) FROM addresses a WHERE a.division_id = d.id), 0),
                            coalesce((SELECT max(substr(c.code, length(d.code) + 1))::bigint FROM address_codes c
                                      WHERE c.code >= d.code
                                        AND c.code < lpad((d.code::numeric + 1)::text, length(d.code), '0')), 0)
                   ) AS base
            FROM (SELECT id, coalesce(nbs_code, mca_code, id::text) AS code FROM divisions
                  WHERE id IN (SELECT DISTINCT division_id FROM {{stage}} s
                               WHERE s.reason IS NULL AND {unmatched})) d""")
        self.x("ANALYZE load_addr_base")
        with self.timer("insert"):
            self.progress("写入 writing", 0, to_insert)
            if bulk:
                # An empty table: codes in file order per village from the position counted while
                # streaming (a row refused by the database-side checks leaves its number unused).
                numbered = """FROM {stage} s JOIN load_addr_base b ON b.division_id = s.division_id
                              WHERE s.reason IS NULL"""
                seq = "b.base + s.pos"
            else:
                numbered = f"""FROM (SELECT s.row_no, s.division_id,
                                     row_number() OVER (PARTITION BY s.division_id ORDER BY s.row_no) AS rn
                              FROM {{stage}} s WHERE s.reason IS NULL AND {unmatched}) q
                              JOIN {{stage}} s ON s.row_no = q.row_no
                              JOIN load_addr_base b ON b.division_id = q.division_id"""
                seq = "b.base + q.rn"
            inserted = self.x(f"""
                INSERT INTO addresses (division_id, street_id, compound_id, group_no, number, number_main, building,
                                       unit, room, full_text, code, local_seq, status, geom, change_set_id, source)
                SELECT s.division_id, s.street_id, s.compound_id, s.group_no, s.number, s.number_main, s.building,
                       s.unit, s.room, s.full_text, b.code || lpad(({seq})::text, 8, '0'), {seq},
                       'active', {{POINT}}, :cs, :source
                {numbered}""", **params).rowcount
            report.inserted = inserted
            self.progress("写入 writing", inserted, to_insert)
        if bulk:
            with self.timer("indexes"):
                self._create_indexes(dropped)
            with self.timer("foreign keys"):
                for name, definition in dropped_fks:
                    self.conn.exec_driver_sql(f'ALTER TABLE addresses ADD CONSTRAINT "{name}" {definition}')
        if has_match:
            with self.timer("update"):
                self._update(params)
        else:
            report.unchanged = 0
        if o.retire_missing:
            with self.timer("retire"):
                self._retire(params, has_match)
        if bulk or inserted > 100_000:
            with self.timer("analyze"):
                self.x("ANALYZE addresses")
        self.x("DROP TABLE load_addr_base")

    def _update(self, params: dict) -> None:
        report = self.report
        report.unchanged = self.x("SELECT count(*) FROM {match} WHERE valid AND NOT changed").scalar_one()
        # Retired addresses this file lists again: reactivated below, their suspended plates come back.
        self.x("""
            CREATE TEMP TABLE load_addr_back ON COMMIT DROP AS
            SELECT m.address_id AS id FROM {match} m JOIN addresses a ON a.id = m.address_id
            WHERE m.valid AND m.changed AND a.status = 'retired'""")
        report.updated = self.x("""
            UPDATE addresses a SET street_id = s.street_id, compound_id = s.compound_id, group_no = s.group_no,
                   number = s.number, number_main = s.number_main, building = s.building, unit = s.unit,
                   room = s.room, full_text = s.full_text, status = 'active',
                   geom = {POINT}, change_set_id = :cs, source = :source
            FROM {match} m JOIN {stage} s ON s.row_no = m.row_no
            WHERE a.id = m.address_id AND m.valid AND m.changed AND NOT m.moved""", **params).rowcount
        moved = self.x("SELECT count(*) FROM {match} WHERE valid AND moved").scalar_one()
        if moved:
            # An address moved to another village gets a code there; its old code keeps resolving.
            self.x("""
                INSERT INTO address_codes (code, address_id, valid_from, valid_to)
                SELECT a.code, a.id, a.valid_from, now() FROM addresses a JOIN {match} m ON m.address_id = a.id
                WHERE m.valid AND m.moved ON CONFLICT (code) DO NOTHING""")
            self.x("""
                UPDATE load_addr_base b SET base = greatest(b.base, coalesce(
                    (SELECT max(a.local_seq) FROM addresses a WHERE a.division_id = b.division_id), 0))""")
            self.x("""
                INSERT INTO load_addr_base (division_id, code, base)
                SELECT d.id, coalesce(d.nbs_code, d.mca_code, d.id::text),
                       coalesce((SELECT max(a.local_seq) FROM addresses a WHERE a.division_id = d.id), 0)
                FROM divisions d WHERE d.id IN (SELECT s.division_id FROM {stage} s JOIN {match} m USING (row_no)
                                                WHERE m.valid AND m.moved)
                  AND d.id NOT IN (SELECT division_id FROM load_addr_base)""")
            report.updated += self.x("""
                UPDATE addresses a SET division_id = s.division_id, street_id = s.street_id,
                       compound_id = s.compound_id, group_no = s.group_no, number = s.number,
                       number_main = s.number_main, building = s.building, unit = s.unit, room = s.room,
                       full_text = s.full_text, status = 'active', geom = {POINT},
                       code = b.code || lpad((b.base + s.rn)::text, 8, '0'), local_seq = b.base + s.rn,
                       change_set_id = :cs, source = :source
                FROM (SELECT s.*, m.address_id, row_number() OVER (PARTITION BY s.division_id ORDER BY s.row_no) AS rn
                      FROM {stage} s JOIN {match} m ON m.row_no = s.row_no WHERE m.valid AND m.moved) s
                JOIN load_addr_base b ON b.division_id = s.division_id
                WHERE a.id = s.address_id""", **params).rowcount
        if self.x("SELECT EXISTS (SELECT 1 FROM load_addr_back)").scalar_one():
            self._follow("SELECT id FROM load_addr_back", params)
        self.x("DROP TABLE load_addr_back")

    def _retire(self, params: dict, has_match: bool) -> None:
        # Villages where a row was refused before its key was known are left alone.
        scope_sql = """
            SELECT DISTINCT division_id FROM {stage} WHERE division_id IS NOT NULL
            EXCEPT SELECT division_id FROM {stage} WHERE division_id IS NOT NULL AND NOT keyed"""
        skipped = self.x("""
            SELECT count(DISTINCT division_id) FROM {stage} WHERE division_id IS NOT NULL AND NOT keyed""").scalar_one()
        if skipped:
            self.report.notes.append(
                f"{skipped} 个村社区有无法识别的行，未注销其中缺失的地址 / retiring skipped in {skipped} villages "
                "with unreadable rows")
        not_matched = "NOT EXISTS (SELECT 1 FROM {match} m WHERE m.address_id = a.id)" if has_match else "true"
        self.x(f"""
            CREATE TEMP TABLE load_addr_retired ON COMMIT DROP AS
            WITH r AS (UPDATE addresses a SET status = 'retired', change_set_id = :cs, source = :source
                       WHERE a.division_id IN ({scope_sql}) AND a.status <> 'retired' AND {not_matched}
                         AND a.change_set_id IS DISTINCT FROM :cs  -- the doors this load just inserted
                       RETURNING a.id)
            SELECT id FROM r""", **params)
        self.report.retired = self.x("SELECT count(*) FROM load_addr_retired").scalar_one()
        if self.report.retired:
            self._follow("SELECT id FROM load_addr_retired", params)
        self.x("DROP TABLE load_addr_retired")

    def _follow(self, ids_sql: str, params: dict) -> None:
        """The plates of addresses this load retired or brought back follow them, in this change set."""
        from registry.doorplates.follow import follow_addresses

        result = follow_addresses(self.conn, ids_sql, change_set_id=params["cs"], source=params["source"])
        self.report.plates.update({k: self.report.plates.get(k, 0) + v for k, v in result.as_counts().items()})

    # -- first load into an empty table: build the indexes once at the end --------------------
    # Per-row index maintenance and foreign-key triggers (one lookup per row and key) cost more
    # than the load itself at city scale (measured: 1.6M rows, 55 s of FK triggers). On an empty
    # table, inside the load's transaction, they are dropped and rebuilt once, set-based; the
    # re-added foreign keys are validated by PostgreSQL in one pass. The table is locked while the
    # transaction runs, which costs nothing to readers of a table that was empty.
    def _drop_foreign_keys(self) -> list[tuple[str, str]]:
        rows = self.x("""
            SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = 'addresses'::regclass AND contype = 'f' ORDER BY conname""").all()
        for name, _ in rows:
            self.conn.exec_driver_sql(f'ALTER TABLE addresses DROP CONSTRAINT "{name}"')
        return [(n, d) for n, d in rows]

    def _drop_indexes(self) -> list[tuple[str, str]]:
        rows = self.x("""
            SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            WHERE x.indrelid = 'addresses'::regclass
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)""").all()
        for name, _ in rows:
            self.x(f'DROP INDEX "{name}"')
        log.info("first load into an empty table: %d indexes dropped, rebuilt after the insert", len(rows))
        return [(n, d) for n, d in rows]

    def _create_indexes(self, dropped: list[tuple[str, str]]) -> None:
        for i, (name, definition) in enumerate(dropped):
            self.progress("索引 indexes", i, len(dropped))
            self.conn.exec_driver_sql(definition)
        self.progress("索引 indexes", len(dropped), len(dropped))
