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
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, text

from registry.loading.address_finish import SCALE, StagedAddresses
from registry.loading.address_forms import AddressForms
from registry.loading.base import (IssueSink, LoadReport, LoadTransaction, RowBatch, Stager, Timer, collect_issues,
                                   copy_text, issues_from, no_progress, scratch_table)
from registry.loading.compose import FastComposer
from registry.loading.directory import DivisionDirectory, Issue, PlaceDirectory
from registry.loading.entities import EntityOptions
from registry.loading.reasons import encode_params

log = logging.getLogger(__name__)

FIELDS = ("id", "division_code", "county", "township", "village", "street", "compound", "natural_village",
          "group", "number", "building", "unit", "room")
STAGE_COLUMNS = ("row_no", "reason", "detail", "warn", "warn_detail", "keyed", "addr_id", "division_id",
                 "street_id", "compound_id", "group_no", "number", "number_main", "building", "unit", "room",
                 "full_text", "x", "y", "pos")
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
        self._checks = 0
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
        self.forms = AddressForms(self.divisions, self.places, self.composer, create_places=o.create_places)
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
        self.sql = StagedAddresses(self.conn, self.stage, self.match, report=self.report, options=o,
                                   change_set_id=self.tx.change_set_id, timer=self.timer, progress=self.progress)
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
    # Each distinct context and form of the rows is worked out once (registry.loading.address_forms);
    # a row is then two dict lookups, a coordinate check and one f-string.

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
        forms = self.forms
        ctx_cache, parts_cache = forms.contexts, forms.parts_seen
        make_ctx, make_parts = forms.context, forms.parts
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
                    addr_id = forms.address_id(ids[i])
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

    # -- set-based validation and apply (registry.loading.address_finish) ---------------------
    def finish(self, sink: IssueSink | None = None) -> LoadReport:
        assert self.stager is not None and self.tx is not None
        report, o, sql = self.report, self.options, self.sql
        with self.timer("copy"):
            self.stager.close()
        report.read = self.stager.rows
        self.progress("校验 validating", 0, 5)
        with self.timer("validate"):
            sql.x("ANALYZE {stage}")
            sql.x(f"""SELECT pg_advisory_xact_lock({_LOCK_CLASS}, division_id::int)
                      FROM (SELECT DISTINCT division_id FROM {{stage}} WHERE division_id IS NOT NULL
                            ORDER BY 1) d""")
            sql.create_places(self.places.created)
            self.progress("校验 validating", 1, 5)
            with self.timer("containment"):
                sql.check_containment()
            self.progress("校验 validating", 2, 5)
            with self.timer("duplicates"):
                self._seen.clear()  # (found while streaming; only duplicate ids are left to check)
                sql.check_duplicate_ids()
            self.progress("校验 validating", 3, 5)
            with self.timer("match"):
                has_match = sql.match()
            with self.timer("duplicate doors"):
                sql.check_duplicate_doors(has_match)
            self.progress("校验 validating", 4, 5)
        with self.timer("apply"):
            sql.apply(has_match)
        self.progress("校验 validating", 5, 5)
        counts = sql.x("""SELECT count(*) FILTER (WHERE reason IS NOT NULL),
                                 count(*) FILTER (WHERE reason IS NULL AND warn IS NOT NULL)
                          FROM {stage}""").one()
        report.rejected, report.warnings = counts
        for code, n in sql.x("SELECT reason, count(*) FROM {stage} WHERE reason IS NOT NULL GROUP BY 1"):
            report.reasons[code] = n
        for code, n in sql.x("SELECT warn, count(*) FROM {stage} WHERE reason IS NULL AND warn IS NOT NULL "
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
        sql.x("DROP TABLE IF EXISTS {stage}, {match}")
        self.tx.finish(report, dry_run=o.dry_run)
        return report
