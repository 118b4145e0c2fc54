"""Bulk address loading: rows in, one change set out.

1. `feed()` normalises each row in Python while the file streams: the division (by code under
   either authority, a former code, or by names), the street/compound/natural village it names
   (in the row's county, village, township), house-number and building/unit/room/group forms,
   the combination of parts, coordinates, duplicates within the file, and the standard text
   (registry.text.compose_address). Each distinct context and form is worked out once per load.
   Every row, good or refused, is COPYed into an unlogged staging table.
2. `finish()` does the rest set-based in SQL: containment in the village polygon (or the nearest
   ancestor that has one) with a tolerance, matching to the registry by id or natural key, then
   one INSERT of the new rows (codes allocated per village), one UPDATE of the changed ones (the
   history triggers keep the old version), and with `retire_missing` one UPDATE retiring what a
   full re-survey no longer lists.

Matching: a row carrying an `id` is matched by it (so a correction may change any attribute);
otherwise by the natural key (division, street, compound or natural village, group, number,
building, unit, room), the key the registry's unique index enforces. A matched row whose
coordinates, text or status differ is updated; otherwise it is unchanged.

Retiring with `retire_missing` is scoped to the villages the file names, and skipped in a
village where some row was refused before its key was known (so a typo never retires a door).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Connection, text

from registry.faults import checkpoint
from registry.loading.base import (IssueSink, LoadReport, LoadTransaction, RowBatch, Stager, Timer, collect_issues,
                                   copy_text, issues_from, no_progress, scratch_table)
from registry.loading.compose import FastComposer
from registry.loading.entities import DEFAULT_TOLERANCE_M, EntityOptions  # noqa: F401 (re-exported)
from registry.loading.directory import DivisionDirectory, DivisionInfo, Issue, PlaceDirectory, clean_name
from registry.loading.reasons import encode_params
from registry.loading.spatial import check_containment
from registry.text import (InvalidText, parse_building, parse_group, parse_house_number, parse_room, parse_unit,
                           place_name_pinyin)

log = logging.getLogger(__name__)

FIELDS = ("id", "division_code", "county", "township", "village", "street", "compound", "natural_village",
          "group", "number", "building", "unit", "room")
STAGE_COLUMNS = ("row_no", "reason", "detail", "warn", "warn_detail", "keyed", "addr_id", "division_id",
                 "street_id", "compound_id", "group_no", "number", "number_main", "building", "unit", "room",
                 "full_text", "x", "y", "pos")
# Coordinates travel as integers of 1e-7 degree (~1 cm): exact, and cheap to print. x / 1e7 in
# float8 is the correctly rounded value of the decimal, the same double a text would parse to.
SCALE = 10_000_000
LON, LAT = "(s.x::float8 / 1e7::float8)", "(s.y::float8 / 1e7::float8)"
POINT = f"ST_SetSRID(ST_MakePoint({LON}, {LAT}), 4490)"
MAX_FIELD_CHARS = 200
# A sane box around China: catches swapped lon/lat and projected metres declared as degrees.
LON_RANGE = (73.0, 136.0)
LAT_RANGE = (3.0, 54.0)
BULK_INDEX_THRESHOLD = 50_000
_LOCK_CLASS = 3  # pg_advisory_xact_lock(3, village id): one address load per village at a time
_N = "\\N"


@dataclass
class AddressOptions(EntityOptions):
    """The options every load takes, plus the address loader's own."""

    create_places: bool = False
    bulk_index_threshold: int = BULK_INDEX_THRESHOLD


class _Context(NamedTuple):
    key: int  # the normalized (division, street, compound, group) part of the natural key, interned
    division: DivisionInfo | None
    issue: Issue | None
    prefix: str | None  # staged key columns division_id .. group_no, COPY text
    head: str | None  # the standard text up to the door number, COPY-escaped (None: compose per row)
    names: dict | None  # compose_address arguments of the context
    warn_cols: str | None  # staged warn, warn_detail


class _Parts(NamedTuple):
    key: int  # the normalized (number, building, unit, room) part of the natural key, interned
    issue: Issue | None
    suffix: str | None  # staged number .. room, COPY text
    tail: str | None  # door number + building/unit/room text, COPY-escaped
    values: dict | None  # compose_address arguments of the parts


def _standard_building(raw: str) -> str:
    try:
        return f"{parse_building(raw)}幢"
    except InvalidText:
        s = clean_name(raw).upper()
        if len(s) in (1, 2) and s[0].isascii() and s[0].isalpha() and s[1:] in ("", "幢", "栋", "座"):
            return f"{s[0]}幢"
        raise


_PARTS = {
    "building": ("bad_building", _standard_building),
    "unit": ("bad_unit", lambda raw: f"{parse_unit(raw)}单元"),
    "room": ("bad_room", lambda raw: f"{parse_room(raw)}室"),
    "group": ("bad_group", lambda raw: f"{parse_group(raw)}组"),
}


class AddressLoad:
    kind = "load_addresses"

    def __init__(self, conn: Connection, options: AddressOptions, progress=None) -> None:
        self.conn = conn
        self.options = options
        self.progress = progress or no_progress
        self.report = LoadReport(kind=self.kind, source=options.source, checksum=options.checksum)
        self.timer = Timer(self.report)
        self.tx: LoadTransaction | None = None
        self.stager: Stager | None = None
        self._caches: dict[str, dict] = {k: {} for k in ("number", "building", "unit", "room", "group", "id")}
        self._ctx_cache: dict[tuple, _Context] = {}
        self._parts_cache: dict[tuple, _Parts] = {}
        self._checks = 0
        self._interned: dict[tuple, int] = {}
        self._seen: dict[int, int] = {}  # natural key -> first row (~100 bytes a row at city scale)
        self._positions: dict[int, int] = {}  # village -> accepted rows so far (for the bulk path's codes)
        self.composer = FastComposer()

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "AddressLoad":
        o = self.options
        self.tx = LoadTransaction(self.conn, kind=self.kind, actor=o.actor, source=o.source, checksum=o.checksum,
                                  reason=o.reason, approval_ref=o.approval_ref, details=o.details)
        with self.timer("directories"):
            self.divisions = DivisionDirectory.load(self.conn, o.code_authority, pending=o.pending_codes)
            self.places = PlaceDirectory.load(self.conn, self.divisions)
        self.stage = scratch_table(self.conn, "load_addr_stage")
        self.match = scratch_table(self.conn, "load_addr_match")
        self.conn.execute(text(f"""
            CREATE UNLOGGED TABLE {self.stage} (
                row_no bigint NOT NULL, reason text, detail text, warn text, warn_detail text,
                keyed boolean NOT NULL DEFAULT false, addr_id bigint, division_id bigint,
                street_id bigint, compound_id bigint, group_no text, number text, number_main integer,
                building text, unit text, room text, full_text text, x bigint, y bigint, pos integer
            ) WITH (autovacuum_enabled = off)"""))
        self.stager = Stager(self.conn, self.stage, STAGE_COLUMNS)
        return self

    def abort(self, exc: BaseException | None = None) -> None:
        if self.stager is not None:
            try:
                self.stager.close(exc or RuntimeError("aborted"))
            except Exception:  # the COPY is already broken; the rollback below cleans up
                pass
        if self.tx is not None:
            self.tx.abort()

    # -- streaming ----------------------------------------------------------------------------
    # Rows share most of their work: ~1.6M addresses hang off tens of thousands of (village,
    # street/compound/natural village, group) contexts and a few thousand distinct (number,
    # building, unit, room) forms. Each distinct context and each distinct form is resolved,
    # checked and rendered (COPY-escaped, with its piece of the standard text) once per load;
    # a row is then two dict lookups, a coordinate check and one f-string.

    def _context(self, code, county, township, village, street, compound, nv, group) -> _Context:
        division = None
        try:
            code = code.strip() if code else None
            village = village.strip() if village else None
            if code:
                division = self.divisions.by_code_or_issue(code)
            elif village:
                division = self.divisions.by_names_or_issue((county or "").strip() or None,
                                                            (township or "").strip() or None, village)
            else:
                raise Issue("missing_field", field="division_code / 区划代码")
            street = street.strip() if street else None
            compound = compound.strip() if compound else None
            nv = nv.strip() if nv else None
            if compound and nv:
                raise Issue("conflicting_fields", what_zh="同一行既有小区又有自然村",
                            what_en="a row names both a compound and a natural village")
            group_text = self._part("group", group.strip()) if group and group.strip() else None
            create = self.options.create_places
            street_ref = compound_ref = None
            warn = None
            if street:
                self._check_length("street", street)
                street_ref = self.places.resolve("road", street, division, create=create)
                if street_ref.alias_of is not None:
                    warn = ("former_place_name", {"name": street, "current": street_ref.name})
            if compound or nv:
                self._check_length("compound", compound or nv)
                compound_ref = self.places.resolve("compound" if compound else "natural_village", compound or nv,
                                                   division, create=create)
                if compound_ref.alias_of is not None and warn is None:
                    warn = ("former_place_name", {"name": compound or nv, "current": compound_ref.name})
            names = dict(county=division.county_name, township=division.township_name, village=division.name,
                         street=street_ref.name if street_ref else None,
                         compound=compound_ref.name if compound_ref and compound else None,
                         natural_village=compound_ref.name if compound_ref and nv else None, group=group_text)
            prefix = "\t".join((str(division.id), str(street_ref.id) if street_ref else _N,
                                str(compound_ref.id) if compound_ref else _N, group_text or ""))
            head = None if (street_ref and compound_ref) else copy_text(self.composer.head(**names))
            warn_cols = f"{warn[0]}\t{copy_text(encode_params(warn[1]))}" if warn else f"{_N}\t{_N}"
            key = self._interned.setdefault(("c", prefix), len(self._interned))
            return _Context(key, division, None, prefix, head, names, warn_cols)
        except Issue as issue:
            return _Context(-1, division, issue, None, None, None, None)

    def _parts(self, number, building, unit, room) -> _Parts:
        try:
            hn = number_text = number_main = None
            if number and number.strip():
                hn, number_text, number_main = self._number(number.strip())
            b = self._part("building", building.strip()) if building and building.strip() else None
            u = self._part("unit", unit.strip()) if unit and unit.strip() else None
            r = self._part("room", room.strip()) if room and room.strip() else None
            if hn is None and b is None:
                raise Issue("incomplete_address", what_zh="需要门牌号或楼幢号",
                            what_en="a house number or a building is required")
            if u is not None and b is None:
                raise Issue("incomplete_address", what_zh="有单元号而没有楼幢号", what_en="a unit without a building")
            if r is not None and b is None and hn is None:
                raise Issue("incomplete_address", what_zh="有室号而没有门牌号或楼幢号",
                            what_en="a room without a house number or building")
            suffix = "\t".join((number_text or "", _N if number_main is None else str(number_main), b or "", u or "",
                                r or ""))
            tail = copy_text((number_text or "") + self.composer.tail(b, u, r))
            key = self._interned.setdefault(("p", suffix), len(self._interned))
            return _Parts(key, None, suffix, tail, dict(number=hn, building=b, unit=u, room=r))
        except Issue as issue:
            return _Parts(-1, issue, None, None, None)

    def _check_length(self, name: str, value: str) -> None:
        if len(value) > MAX_FIELD_CHARS:
            raise Issue("field_too_long", field=name, length=len(value), limit=MAX_FIELD_CHARS)

    def _part(self, kind: str, raw: str) -> str:
        cache = self._caches[kind]
        hit = cache.get(raw)
        if hit is None:
            code, parse = _PARTS[kind]
            if len(raw) > MAX_FIELD_CHARS:
                hit = Issue("field_too_long", field=kind, length=len(raw), limit=MAX_FIELD_CHARS)
            else:
                try:
                    hit = parse(raw)
                except InvalidText:
                    hit = Issue(code, value=raw)
            cache[raw] = hit
        if isinstance(hit, Issue):
            raise hit.with_traceback(None)
        return hit

    def _number(self, raw: str):
        cache = self._caches["number"]
        hit = cache.get(raw)
        if hit is None:
            if len(raw) > MAX_FIELD_CHARS:
                hit = Issue("field_too_long", field="number", length=len(raw), limit=MAX_FIELD_CHARS)
            else:
                try:
                    hn = parse_house_number(raw)
                    hit = (hn, hn.standard, hn.main)
                except InvalidText:
                    hit = Issue("bad_number", value=raw)
            cache[raw] = hit
        if isinstance(hit, Issue):
            raise hit.with_traceback(None)
        return hit

    @staticmethod
    def _id(raw: str) -> int:
        s = raw.strip()
        if s.endswith(".0"):
            s = s[:-2]
        if not s.isdigit() or not s.isascii() or int(s) < 1 or int(s) > 2**62:
            raise Issue("bad_id", value=raw)
        return int(s)

    def feed(self, batch: RowBatch) -> None:
        """Normalise and stage one batch of rows."""
        assert self.stager is not None, "start() first"
        n = len(batch)
        if n == 0:
            return
        col = batch.column
        ids = batch.values.get("id")
        contexts = zip(col("division_code"), col("county"), col("township"), col("village"), col("street"),
                       col("compound"), col("natural_village"), col("group"))
        parts = zip(col("number"), col("building"), col("unit"), col("room"))
        if batch.lon is not None:
            with np.errstate(invalid="ignore"):
                xs = np.where(np.isfinite(batch.lon), np.round(batch.lon * SCALE), -1).astype(np.int64).tolist()
                ys = np.where(np.isfinite(batch.lat), np.round(batch.lat * SCALE), -1).astype(np.int64).tolist()
        else:
            xs = ys = [-1] * n
        row_issues = batch.issues
        geom_issues = batch.geom_issues if batch.geom_issues and any(batch.geom_issues) else None
        ctx_cache, parts_cache = self._ctx_cache, self._parts_cache
        make_ctx, make_parts = self._context, self._parts
        check = self.composer.check
        checks = self._checks
        seen = self._seen
        positions = self._positions
        lo_x, hi_x = int(LON_RANGE[0] * SCALE), int(LON_RANGE[1] * SCALE)
        lo_y, hi_y = int(LAT_RANGE[0] * SCALE), int(LAT_RANGE[1] * SCALE)
        lines: list[str] = []
        append = lines.append
        for i, ckey, pkey, x, y in zip(range(n), contexts, parts, xs, ys):
            row_no = batch.rows[i]
            ctx = ctx_cache.get(ckey)
            if ctx is None:
                ctx = ctx_cache[ckey] = make_ctx(*ckey)
            prt = parts_cache.get(pkey)
            if prt is None:
                prt = parts_cache[pkey] = make_parts(*pkey)
            addr_id = _N
            try:
                if row_issues is not None and row_issues[i] is not None:
                    raise Issue(row_issues[i][0], **row_issues[i][1])
                if ids is not None and ids[i] and not ids[i].isspace():
                    addr_id = self._id(ids[i])
                if ctx.issue is not None:
                    raise ctx.issue.with_traceback(None)
                if prt.issue is not None:
                    raise prt.issue.with_traceback(None)
                if geom_issues is not None and geom_issues[i] is not None:
                    raise Issue(geom_issues[i][0], **geom_issues[i][1])
                if x < 0 or y < 0:  # missing (the box below excludes real negatives)
                    raise Issue("missing_geometry")
                if not (lo_x <= x <= hi_x and lo_y <= y <= hi_y):
                    raise Issue("bad_coordinates", value=f"{x / SCALE}, {y / SCALE}")
                # duplicates within the file: the first row with a natural key keeps it
                key = (ctx.key << 32) | prt.key
                first = seen.get(key)
                if first is not None:
                    raise Issue("duplicate_in_file", first_row=first)
                seen[key] = row_no
                village = ctx.division.id
                pos = positions.get(village, 0) + 1
                positions[village] = pos
                if ctx.head is not None:
                    full_text = ctx.head + prt.tail
                    checks += 1
                    if checks <= 200 or checks % 500 == 0:
                        check(full_text, ctx.names, prt.values)
                else:
                    full_text = copy_text(self.composer.full(ctx.names, prt.values))
                append(f"{row_no}\t\\N\t\\N\t{ctx.warn_cols}\tt\t{addr_id}\t{ctx.prefix}\t{prt.suffix}\t"
                       f"{full_text}\t{x}\t{y}\t{pos}\n")
            except Issue as issue:
                detail = copy_text(encode_params(issue.params))
                if ctx.prefix is not None and prt.suffix is not None:
                    # the key is known: the row can still protect its address from retiring
                    append(f"{row_no}\t{issue.code}\t{detail}\t\\N\t\\N\tt\t{addr_id}\t{ctx.prefix}\t"
                           f"{prt.suffix}\t\\N\t\\N\t\\N\t\\N\n")
                else:
                    div = str(ctx.division.id) if ctx.division is not None else _N
                    append(f"{row_no}\t{issue.code}\t{detail}\t\\N\t\\N\tf\t\\N\t{div}" + "\t\\N" * 12 + "\n")
        self._checks = checks
        self.stager.write(lines)

    @property
    def staged(self) -> int:
        return self.stager.rows if self.stager else 0

    # -- set-based validation and apply -------------------------------------------------------
    def _x(self, sql: str, **params: Any):
        sql = sql.format(stage=self.stage, match=self.match, POINT=POINT, LON=LON, LAT=LAT)
        checkpoint("load.statement")
        if not log.isEnabledFor(logging.DEBUG):
            return self.conn.execute(text(sql), params)
        started = time.perf_counter()
        result = self.conn.execute(text(sql), params)
        log.debug("%.3f s  %s", time.perf_counter() - started, " ".join(sql.split())[:100])
        return result

    def finish(self, sink: IssueSink | None = None) -> LoadReport:
        assert self.stager is not None and self.tx is not None
        report, o = self.report, self.options
        with self.timer("copy"):
            self.stager.close()
        report.read = self.stager.rows
        self.progress("校验 validating", 0, 5)
        with self.timer("validate"):
            self._x("ANALYZE {stage}")
            self._x(f"""SELECT pg_advisory_xact_lock({_LOCK_CLASS}, division_id::int)
                        FROM (SELECT DISTINCT division_id FROM {{stage}} WHERE division_id IS NOT NULL
                              ORDER BY 1) d""")
            self._create_places()
            self.progress("校验 validating", 1, 5)
            with self.timer("containment"):
                self._check_containment()
            self.progress("校验 validating", 2, 5)
            with self.timer("duplicates"):
                self._seen.clear()  # (found while streaming; only duplicate ids are left to check)
                self._check_duplicate_ids()
            self.progress("校验 validating", 3, 5)
            with self.timer("match"):
                has_match = self._match()
            with self.timer("duplicate doors"):
                self._check_duplicate_doors(has_match)
            self.progress("校验 validating", 4, 5)
        with self.timer("apply"):
            self._apply(has_match)
        self.progress("校验 validating", 5, 5)
        counts = self._x("""SELECT count(*) FILTER (WHERE reason IS NOT NULL),
                                   count(*) FILTER (WHERE reason IS NULL AND warn IS NOT NULL)
                            FROM {stage}""").one()
        report.rejected, report.warnings = counts
        for code, n in self._x("SELECT reason, count(*) FROM {stage} WHERE reason IS NOT NULL GROUP BY 1"):
            report.reasons[code] = n
        for code, n in self._x("SELECT warn, count(*) FROM {stage} WHERE reason IS NULL AND warn IS NOT NULL "
                               "GROUP BY 1"):
            report.reasons[code] = n
        accounted = report.inserted + report.updated + report.unchanged + report.rejected
        if accounted != report.read:  # pragma: no cover - a bug, never silently drop a row
            raise RuntimeError(f"row accounting mismatch: read {report.read}, accounted {accounted}")
        with self.timer("issues"):
            collect_issues(report, issues_from(self.conn, f"""
                SELECT row_no, reason, detail FROM {self.stage} WHERE reason IS NOT NULL
                UNION ALL
                SELECT row_no, warn, warn_detail FROM {self.stage} WHERE reason IS NULL AND warn IS NOT NULL
                ORDER BY 1"""), sink)
        self._x("DROP TABLE IF EXISTS {stage}, {match}")
        self.tx.finish(report, dry_run=o.dry_run)
        return report

    def _create_places(self) -> None:
        created = self.places.created
        if not created:
            return
        mapping = []
        for place in created:
            pid = self.conn.execute(text("""
                INSERT INTO place_names (category, name, pinyin, division_id, county_id, change_set_id, source)
                VALUES (:category, :name, :pinyin, :division_id, :county_id, :cs, :source) RETURNING id"""), {
                **{k: place[k] for k in ("category", "name", "division_id", "county_id")},
                "pinyin": place_name_pinyin(place["name"], natural_village=place["category"] == "natural_village"),
                "cs": self.tx.change_set_id, "source": self.options.source,
            }).scalar_one()
            mapping.append({"placeholder": place["placeholder"], "id": pid})
        values = ", ".join(f"({m['placeholder']}, {m['id']})" for m in mapping)
        for column in ("street_id", "compound_id"):
            self._x(f"UPDATE {{stage}} s SET {column} = m.id FROM (VALUES {values}) m(placeholder, id) "
                    f"WHERE s.{column} = m.placeholder")
        self.report.places_created = len(mapping)

    def _check_containment(self) -> None:
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

    def _check_duplicate_ids(self) -> None:
        self._x("""
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

    def _check_duplicate_doors(self, has_match: bool) -> None:
        door = "concat(s.number, s.building, s.unit, s.room)"
        detail = f"""json_build_object('street', st.name, 'door', {door}, 'village', v.name,
                                       'other', o.other_zh, 'other_en', o.other_en, 'other_village', ov.name,
                                       'other_row', o.other_row, 'other_id', o.other_id)::text"""
        self._x(f"""
            CREATE TEMP TABLE load_addr_doors ON COMMIT DROP AS
            SELECT s.row_no, s.division_id, v.parent_id AS township_id, s.street_id, s.compound_id, s.group_no,
                   s.number, s.building, s.unit, s.room
            FROM {{stage}} s JOIN divisions v ON v.id = s.division_id
            WHERE s.reason IS NULL AND s.street_id IS NOT NULL AND s.street_id > 0""")
        in_file = self._x(f"""
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
        registered = self._x(f"""
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
        self._x("DROP TABLE load_addr_doors")
        if in_file or registered:
            log.info("duplicate doors: %d rows against the file, %d against the registry", in_file, registered)

    def _match(self) -> bool:
        """Pair staged rows with registered addresses (by id, else by natural key)."""
        any_registered = self._x("""
            SELECT EXISTS (SELECT 1 FROM addresses a WHERE a.division_id IN (
                SELECT DISTINCT division_id FROM {stage} WHERE keyed))""").scalar_one()
        has_ids = self._x("SELECT EXISTS (SELECT 1 FROM {stage} WHERE addr_id IS NOT NULL)").scalar_one()
        if not any_registered and not has_ids:
            return False
        changed = """(a.status <> 'active' OR a.full_text <> s.full_text
                      OR a.number_main IS DISTINCT FROM s.number_main
                      OR ST_X(a.geom) IS DISTINCT FROM {LON} OR ST_Y(a.geom) IS DISTINCT FROM {LAT}
                      OR a.division_id <> s.division_id OR a.street_id IS DISTINCT FROM s.street_id
                      OR a.compound_id IS DISTINCT FROM s.compound_id OR a.group_no <> s.group_no
                      OR a.number <> s.number OR a.building <> s.building OR a.unit <> s.unit OR a.room <> s.room)"""
        self._x(f"""
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
            self._x("""
                UPDATE {stage} s SET reason = 'unknown_id', detail = json_build_object('value', s.addr_id)::text
                WHERE s.reason IS NULL AND s.addr_id IS NOT NULL
                  AND NOT EXISTS (SELECT 1 FROM addresses a WHERE a.id = s.addr_id)""")
            self._x(f"""
                UPDATE {{stage}} s SET reason = 'duplicate_in_registry',
                       detail = json_build_object('other_id', a.id)::text
                FROM addresses a
                WHERE s.reason IS NULL AND s.addr_id IS NOT NULL AND a.id <> s.addr_id AND {self._key_eq('a', 's')}""")
            # Two rows (one by id, one by key) reaching the same address: the later one is refused.
            self._x("""
                UPDATE {stage} s SET reason = 'duplicate_in_file', detail = json_build_object('first_row', d.first_row)::text
                FROM (SELECT address_id, min(row_no) AS first_row FROM {match} m
                      WHERE m.valid GROUP BY address_id HAVING count(*) > 1) d
                JOIN {match} m ON m.address_id = d.address_id AND m.row_no <> d.first_row
                WHERE s.row_no = m.row_no AND s.reason IS NULL""")
            self._x("UPDATE {match} m SET valid = false FROM {stage} s WHERE s.row_no = m.row_no AND s.reason IS NOT NULL "
                    "AND m.valid")
        self._x("CREATE INDEX ON {match} (row_no)")
        self._x("ANALYZE {match}")
        return True

    def _apply(self, has_match: bool) -> None:
        report, o, cs = self.report, self.options, self.tx.change_set_id
        params = {"cs": cs, "source": o.source}
        unmatched = "NOT EXISTS (SELECT 1 FROM {match} m WHERE m.row_no = s.row_no)" if has_match else "true"
        to_insert = self._x(f"SELECT count(*) FROM {{stage}} s WHERE s.reason IS NULL AND {unmatched}").scalar_one()
        empty = not self._x("SELECT EXISTS (SELECT 1 FROM addresses)").scalar_one()
        bulk = empty and to_insert >= o.bulk_index_threshold
        dropped: list[tuple[str, str]] = []
        dropped_fks: list[tuple[str, str]] = []
        if bulk:
            dropped_fks = self._drop_foreign_keys()
            dropped = self._drop_indexes()
        # The next code of each village that gets new addresses: one probe of
        # ix_addresses_division_seq per village, and the highest former code it ever carried.
        self._x(f"""
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
        self._x("ANALYZE load_addr_base")
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
            inserted = self._x(f"""
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
                self._x("ANALYZE addresses")
        self._x("DROP TABLE load_addr_base")

    def _update(self, params: dict) -> None:
        report = self.report
        report.unchanged = self._x("SELECT count(*) FROM {match} WHERE valid AND NOT changed").scalar_one()
        # Retired addresses this file lists again: reactivated below, their suspended plates come back.
        self._x("""
            CREATE TEMP TABLE load_addr_back ON COMMIT DROP AS
            SELECT m.address_id AS id FROM {match} m JOIN addresses a ON a.id = m.address_id
            WHERE m.valid AND m.changed AND a.status = 'retired'""")
        report.updated = self._x("""
            UPDATE addresses a SET street_id = s.street_id, compound_id = s.compound_id, group_no = s.group_no,
                   number = s.number, number_main = s.number_main, building = s.building, unit = s.unit,
                   room = s.room, full_text = s.full_text, status = 'active',
                   geom = {POINT}, change_set_id = :cs, source = :source
            FROM {match} m JOIN {stage} s ON s.row_no = m.row_no
            WHERE a.id = m.address_id AND m.valid AND m.changed AND NOT m.moved""", **params).rowcount
        moved = self._x("SELECT count(*) FROM {match} WHERE valid AND moved").scalar_one()
        if moved:
            # An address moved to another village gets a code there; its old code keeps resolving.
            self._x("""
                INSERT INTO address_codes (code, address_id, valid_from, valid_to)
                SELECT a.code, a.id, a.valid_from, now() FROM addresses a JOIN {match} m ON m.address_id = a.id
                WHERE m.valid AND m.moved ON CONFLICT (code) DO NOTHING""")
            self._x("""
                UPDATE load_addr_base b SET base = greatest(b.base, coalesce(
                    (SELECT max(a.local_seq) FROM addresses a WHERE a.division_id = b.division_id), 0))""")
            self._x("""
                INSERT INTO load_addr_base (division_id, code, base)
                SELECT d.id, coalesce(d.nbs_code, d.mca_code, d.id::text),
                       coalesce((SELECT max(a.local_seq) FROM addresses a WHERE a.division_id = d.id), 0)
                FROM divisions d WHERE d.id IN (SELECT s.division_id FROM {stage} s JOIN {match} m USING (row_no)
                                                WHERE m.valid AND m.moved)
                  AND d.id NOT IN (SELECT division_id FROM load_addr_base)""")
            report.updated += self._x("""
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
        if self._x("SELECT EXISTS (SELECT 1 FROM load_addr_back)").scalar_one():
            self._follow("SELECT id FROM load_addr_back", params)
        self._x("DROP TABLE load_addr_back")

    def _retire(self, params: dict, has_match: bool) -> None:
        # Villages where a row was refused before its key was known are left alone.
        scope_sql = """
            SELECT DISTINCT division_id FROM {stage} WHERE division_id IS NOT NULL
            EXCEPT SELECT division_id FROM {stage} WHERE division_id IS NOT NULL AND NOT keyed"""
        skipped = self._x("""
            SELECT count(DISTINCT division_id) FROM {stage} WHERE division_id IS NOT NULL AND NOT keyed""").scalar_one()
        if skipped:
            self.report.notes.append(
                f"{skipped} 个村社区有无法识别的行，未注销其中缺失的地址 / retiring skipped in {skipped} villages "
                "with unreadable rows")
        not_matched = "NOT EXISTS (SELECT 1 FROM {match} m WHERE m.address_id = a.id)" if has_match else "true"
        self._x(f"""
            CREATE TEMP TABLE load_addr_retired ON COMMIT DROP AS
            WITH r AS (UPDATE addresses a SET status = 'retired', change_set_id = :cs, source = :source
                       WHERE a.division_id IN ({scope_sql}) AND a.status <> 'retired' AND {not_matched}
                         AND a.change_set_id IS DISTINCT FROM :cs  -- the doors this load just inserted
                       RETURNING a.id)
            SELECT id FROM r""", **params)
        self.report.retired = self._x("SELECT count(*) FROM load_addr_retired").scalar_one()
        if self.report.retired:
            self._follow("SELECT id FROM load_addr_retired", params)
        self._x("DROP TABLE load_addr_retired")

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
        rows = self._x("""
            SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = 'addresses'::regclass AND contype = 'f' ORDER BY conname""").all()
        for name, _ in rows:
            self.conn.exec_driver_sql(f'ALTER TABLE addresses DROP CONSTRAINT "{name}"')
        return [(n, d) for n, d in rows]

    def _drop_indexes(self) -> list[tuple[str, str]]:
        rows = self._x("""
            SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            WHERE x.indrelid = 'addresses'::regclass
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)""").all()
        for name, _ in rows:
            self._x(f'DROP INDEX "{name}"')
        log.info("first load into an empty table: %d indexes dropped, rebuilt after the insert", len(rows))
        return [(n, d) for n, d in rows]

    def _create_indexes(self, dropped: list[tuple[str, str]]) -> None:
        for i, (name, definition) in enumerate(dropped):
            self.progress("索引 indexes", i, len(dropped))
            self.conn.exec_driver_sql(definition)
        self.progress("索引 indexes", len(dropped), len(dropped))
