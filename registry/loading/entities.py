"""Bulk loading of the smaller registers through the same machinery as addresses: place names
(with their former names), facilities, heritage items, and division polygons.

Each kind is an `EntitySpec` (registry.loading.entity_kinds: the columns staged and written, the
natural key, the columns compared to decide "changed", the status values for active and retired
rows, and a row normaliser that resolves the division and checks values). The SQL steps here are
shared: geometry validity, containment for points, duplicates in the file, matching by id or
natural key, one INSERT, one UPDATE through the history trigger, optional retiring, counts.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from registry.faults import checkpoint
from registry.loading.base import (IssueSink, LoadReport, LoadTransaction, RowBatch, Stager, Timer, collect_issues,
                                   copy_text, issues_from, no_progress, scratch_table)
from registry.loading.directory import DivisionDirectory, Issue
from registry.loading.entity_kinds import EntitySpec, field_text
from registry.loading.reasons import encode_params
from registry.loading.spatial import check_containment

log = logging.getLogger(__name__)
_N = "\\N"


# Points this close outside their division are accepted with a warning (survey noise, edge snapping).
DEFAULT_TOLERANCE_M = 30.0


@dataclass
class EntityOptions:
    source: str
    actor: str = "registry"
    checksum: str | None = None
    reason: str | None = None
    approval_ref: str | None = None
    retire_missing: bool = False
    dry_run: bool = False
    tolerance_m: float = DEFAULT_TOLERANCE_M
    code_authority: str | None = None  # nbs2023 | mca2025: the authority of the file's 9-digit codes
    # (code, authority, division id): codes the file names that these divisions only get from pending
    # adjustments (a city built on the state before them: loaders/reference.py `before_state_codes`)
    pending_codes: tuple[tuple[str, str, int], ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


_GEOMETRY_TYPES = {
    "point": {"Point"},
    "line_or_point": {"Point", "LineString", "MultiLineString", "MultiPoint"},
    "polygon": {"Polygon", "MultiPolygon"},
    "any": None,
}


class EntityLoad:
    def __init__(self, conn: Connection, spec: EntitySpec, options: EntityOptions, progress=None) -> None:
        self.conn = conn
        self.spec = spec
        self.options = options
        self.progress = progress or no_progress
        self.report = LoadReport(kind=spec.kind, source=options.source, checksum=options.checksum)
        self.timer = Timer(self.report)
        self.tx: LoadTransaction | None = None
        self.stager: Stager | None = None
        self._columns = [c.name for c in spec.columns]

    def start(self) -> "EntityLoad":
        o = self.options
        self.tx = LoadTransaction(self.conn, kind=self.spec.kind, actor=o.actor, source=o.source, checksum=o.checksum,
                                  reason=o.reason, approval_ref=o.approval_ref, details=o.details)
        self.divisions = DivisionDirectory.load(self.conn, o.code_authority, pending=o.pending_codes)
        self.stage = scratch_table(self.conn, "load_ent_stage")
        self.match = scratch_table(self.conn, "load_ent_match")
        cols = "".join(f", {c.name} {c.sql_type}" for c in self.spec.columns)
        self.conn.execute(text(f"""
            CREATE UNLOGGED TABLE {self.stage} (
                row_no bigint NOT NULL, reason text, detail text, warn text, warn_detail text,
                keyed boolean NOT NULL DEFAULT false, ent_id bigint, division_id bigint{cols}, geom geometry
            ) WITH (autovacuum_enabled = off)"""))
        self.stage_columns = ["row_no", "reason", "detail", "warn", "warn_detail", "keyed", "ent_id", "division_id",
                              *self._columns, "geom"]
        self.stager = Stager(self.conn, self.stage, self.stage_columns)
        return self

    def abort(self, exc: BaseException | None = None) -> None:
        if self.stager is not None:
            try:
                self.stager.close(exc or RuntimeError("aborted"))
            except Exception:
                pass
        if self.tx is not None:
            self.tx.abort()

    def feed(self, batch: RowBatch) -> None:
        spec = self.spec
        n = len(batch)
        present = [f for f in spec.fields if f in batch.values]
        issues = batch.issues or [None] * n
        geom_issues = batch.geom_issues or [None] * n
        wkb = batch.wkb or [None] * n
        types = batch.geom_types or [None] * n
        allowed = _GEOMETRY_TYPES[spec.geometry]
        lines = []
        for i in range(n):
            row_no = batch.rows[i]
            rec: dict[str, Any] = {}
            complete = False
            try:
                if issues[i] is not None:
                    raise Issue(issues[i][0], **issues[i][1])
                row = {f: batch.values[f][i] for f in present}  # values as read: field_text() strips
                raw_id = field_text(row, "id", limit=40) if "id" in row else None
                if raw_id is not None:
                    digits = raw_id[:-2] if raw_id.endswith(".0") else raw_id
                    if not (digits.isascii() and digits.isdigit()) or not 0 < int(digits) < 2**62:
                        raise Issue("bad_id", value=raw_id)
                    rec["ent_id"] = int(digits)
                spec.normalize(self, row, rec)
                complete = True
                if geom_issues[i] is not None:
                    raise Issue(geom_issues[i][0], **geom_issues[i][1])
                if wkb[i] is None:
                    if spec.geometry_required:
                        raise Issue("missing_geometry")
                elif allowed is not None and types[i] not in allowed:
                    raise Issue("bad_geometry", value=f"{types[i]}（应为 {'/'.join(sorted(allowed))}）")
                warn = rec.pop("_warn", None)
                lines.append(self._line(row_no, None, None, warn, rec, True, wkb[i]))
            except Issue as issue:
                rec.pop("_warn", None)
                lines.append(self._line(row_no, issue.code, issue.params, None, rec, complete, None))
        self.stager.write(lines)

    def _line(self, row_no: int, reason: str | None, params: dict | None, warn: tuple | None,
              rec: dict, keyed: bool, wkb: str | None) -> str:
        """A staged row; a refused one keeps its key when it was known (so it still protects its
        registered entry from retiring), and its division (to scope retiring)."""
        values = [str(row_no), reason or _N, copy_text(encode_params(params)) if reason else _N,
                  warn[0] if warn else _N, copy_text(encode_params(warn[1])) if warn else _N,
                  "t" if keyed else "f"]
        values.append(copy_text(rec.get("ent_id")))
        values.append(copy_text(rec.get("division_id")))
        values.extend(copy_text(rec.get(c)) for c in self._columns)
        values.append(wkb or _N)
        return "\t".join(values) + "\n"

    def x(self, sql: str, **params: Any):
        params.setdefault("cs", self.tx.change_set_id)
        params.setdefault("source", self.options.source)
        used = {k: v for k, v in params.items() if f":{k}" in sql}
        checkpoint("load.statement")
        return self.conn.execute(text(sql.replace("{stage}", self.stage).replace("{match}", self.match)), used)

    def _key_join(self, a: str, b: str) -> str:
        return " AND ".join(f"{a}.{k} IS NOT DISTINCT FROM {b}.{k}" for k in self.spec.key)

    def finish(self, sink: IssueSink | None = None) -> LoadReport:
        spec, report, o = self.spec, self.report, self.options
        self.stager.close()
        report.read = self.stager.rows
        self.x("ANALYZE {stage}")
        self.x("""UPDATE {stage} SET reason = 'bad_geometry',
                         detail = json_build_object('value', ST_IsValidReason(geom))::text
                  WHERE reason IS NULL AND geom IS NOT NULL AND NOT ST_IsValid(geom)""")
        if spec.containment:
            check_containment(self.conn, self.stage, "s.geom", o.tolerance_m)
        if spec.key:
            keys = ", ".join(spec.key)
            self.x(f"""
                UPDATE {{stage}} s SET reason = 'duplicate_in_file',
                       detail = json_build_object('first_row', d.first_row)::text
                FROM (SELECT {keys}, min(row_no) AS first_row FROM {{stage}} WHERE reason IS NULL
                      GROUP BY {keys} HAVING count(*) > 1) d
                WHERE s.reason IS NULL AND s.row_no <> d.first_row AND {self._key_join('s', 'd')}""")
        self.x("""
            UPDATE {stage} s SET reason = 'duplicate_in_file', detail = json_build_object('first_row', d.first_row)::text
            FROM (SELECT ent_id, min(row_no) AS first_row FROM {stage} WHERE reason IS NULL AND ent_id IS NOT NULL
                  GROUP BY ent_id HAVING count(*) > 1) d
            WHERE s.reason IS NULL AND s.ent_id = d.ent_id AND s.row_no <> d.first_row""")
        if spec.before_match:
            spec.before_match(self)
        self._match()
        self._apply()
        report.rejected, report.warnings = self.x("""
            SELECT count(*) FILTER (WHERE reason IS NOT NULL), count(*) FILTER (WHERE reason IS NULL AND warn IS NOT NULL)
            FROM {stage}""").one()
        for code, n in self.x("""SELECT coalesce(reason, warn), count(*) FROM {stage}
                                 WHERE reason IS NOT NULL OR warn IS NOT NULL GROUP BY 1"""):
            report.reasons[code] = n
        accounted = report.inserted + report.updated + report.unchanged + report.rejected
        if accounted != report.read:  # pragma: no cover
            raise RuntimeError(f"row accounting mismatch: read {report.read}, accounted {accounted}")
        collect_issues(report, issues_from(self.conn, f"""
            SELECT row_no, reason, detail FROM {self.stage} WHERE reason IS NOT NULL
            UNION ALL SELECT row_no, warn, warn_detail FROM {self.stage} WHERE reason IS NULL AND warn IS NOT NULL
            ORDER BY 1"""), sink)
        self.x("DROP TABLE IF EXISTS {stage}, {match}")
        self.tx.finish(report, dry_run=o.dry_run)
        return report

    def _changed(self) -> str:
        spec = self.spec
        parts = [f"t.{c.name} IS DISTINCT FROM s.{c.name}" for c in spec.columns if c.write and c.compare]
        parts.append(f"ST_AsBinary(t.geom) IS DISTINCT FROM ST_AsBinary({spec.geom_sql})")
        if spec.active_status:
            parts.append(f"t.status IS DISTINCT FROM '{spec.active_status}'")
        if spec.insert:
            parts.append("t.division_id IS DISTINCT FROM s.division_id")
        return "(" + " OR ".join(parts) + ")"

    def _match(self) -> None:
        spec, table = self.spec, self.spec.table
        changed = self._changed()
        by_key = ""
        if spec.key:
            by_key = f"""
                SELECT s.row_no, t.id AS target_id, s.reason IS NULL AS valid, {changed} AS changed
                FROM {{stage}} s JOIN {table} t ON {self._key_join('t', 's')}
                WHERE s.keyed AND s.ent_id IS NULL AND s.reason IS DISTINCT FROM 'duplicate_in_file'
                UNION ALL"""
        self.x(f"""
            CREATE UNLOGGED TABLE {{match}} AS {by_key}
            SELECT s.row_no, t.id AS target_id, s.reason IS NULL AS valid, {changed} AS changed
            FROM {{stage}} s JOIN {table} t ON t.id = s.ent_id
            WHERE s.ent_id IS NOT NULL AND s.reason IS DISTINCT FROM 'duplicate_in_file'""")
        self.x(f"""
            UPDATE {{stage}} s SET reason = 'unknown_id', detail = json_build_object('value', s.ent_id)::text
            WHERE s.reason IS NULL AND s.ent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = s.ent_id)""")
        if spec.key:
            self.x(f"""
                UPDATE {{stage}} s SET reason = 'duplicate_in_registry', detail = json_build_object('other_id', t.id)::text
                FROM {table} t WHERE s.reason IS NULL AND s.ent_id IS NOT NULL AND t.id <> s.ent_id
                  AND {self._key_join('t', 's')}""")
        self.x("""
            UPDATE {stage} s SET reason = 'duplicate_in_file', detail = json_build_object('first_row', d.first_row)::text
            FROM (SELECT target_id, min(row_no) AS first_row FROM {match} WHERE valid
                  GROUP BY target_id HAVING count(*) > 1) d
            JOIN {match} m ON m.target_id = d.target_id AND m.row_no <> d.first_row
            WHERE s.row_no = m.row_no AND s.reason IS NULL""")
        self.x("UPDATE {match} m SET valid = false FROM {stage} s WHERE s.row_no = m.row_no AND s.reason IS NOT NULL "
               "AND m.valid")

    def _apply(self) -> None:
        spec, report, table = self.spec, self.report, self.spec.table
        written = [c.name for c in spec.columns if c.write]
        if spec.insert:
            cols = ["division_id", *written, "geom"] + (["status"] if spec.active_status else [])
            vals = ["s.division_id", *[f"s.{c}" for c in written], spec.geom_sql] + (
                [f"'{spec.active_status}'"] if spec.active_status else [])
            report.inserted = self.x(f"""
                INSERT INTO {table} ({', '.join(cols)}, change_set_id, source)
                SELECT {', '.join(vals)}, :cs, :source FROM {{stage}} s
                WHERE s.reason IS NULL AND NOT EXISTS (SELECT 1 FROM {{match}} m WHERE m.row_no = s.row_no)
                ORDER BY s.row_no""").rowcount
        report.unchanged = self.x("SELECT count(*) FROM {match} WHERE valid AND NOT changed").scalar_one()
        if spec.before_update:
            spec.before_update(self)
        sets = [f"{c} = s.{c}" for c in written] + [f"geom = {spec.geom_sql}"]
        if spec.insert:
            sets.append("division_id = s.division_id")
        if spec.active_status:
            sets.append(f"status = '{spec.active_status}'")
        report.updated = self.x(f"""
            UPDATE {table} t SET {', '.join(sets)}, change_set_id = :cs, source = :source
            FROM {{match}} m JOIN {{stage}} s ON s.row_no = m.row_no
            WHERE t.id = m.target_id AND m.valid AND m.changed""").rowcount
        if self.options.retire_missing and spec.retired_status:
            report.retired = self.x(f"""
                UPDATE {table} t SET status = '{spec.retired_status}', change_set_id = :cs, source = :source
                WHERE t.division_id IN (SELECT DISTINCT division_id FROM {{stage}} WHERE division_id IS NOT NULL
                                        EXCEPT SELECT division_id FROM {{stage}} WHERE division_id IS NOT NULL AND NOT keyed)
                  AND t.status <> '{spec.retired_status}'
                  AND t.change_set_id IS DISTINCT FROM :cs  -- what this load itself inserted
                  AND NOT EXISTS (SELECT 1 FROM {{match}} m WHERE m.target_id = t.id)""").rowcount
        if spec.after_apply:
            spec.after_apply(self)
