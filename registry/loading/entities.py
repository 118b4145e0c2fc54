"""Bulk loading of the smaller registers through the same machinery as addresses: place names
(with their former names), facilities, heritage items, and division polygons.

Each kind is an `EntitySpec`: the columns staged and written, the natural key, the columns
compared to decide "changed", the status values for active and retired rows, and a row
normaliser (Python, per row) that resolves the division and checks values. The SQL steps are
shared: geometry validity, containment for points, duplicates in the file, matching by id or
natural key, one INSERT, one UPDATE through the history trigger, optional retiring, counts.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable

from sqlalchemy import Connection, text

from registry.faults import checkpoint
from registry.loading.base import (IssueSink, LoadReport, LoadTransaction, RowBatch, Stager, Timer, collect_issues,
                                   copy_text, issues_from, no_progress, scratch_table)
from registry.loading.directory import DivisionDirectory, DivisionInfo, Issue, clean_name
from registry.loading.reasons import encode_params
from registry.loading.spatial import check_containment
from registry.placename_categories import category_code, valid_categories
from registry.text import normalize, place_name_pinyin

log = logging.getLogger(__name__)
_N = "\\N"
MAX_TEXT = 20_000  # history and origin texts can be long; beyond this a value is a mistake


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str = "text"
    write: bool = True  # written to the target table (else staged for a later step only)
    compare: bool = True  # a difference makes the row "changed"


@dataclass(frozen=True)
class EntitySpec:
    kind: str  # change-set kind
    table: str
    fields: tuple[str, ...]  # registry field names a file may carry
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # natural key (stage = target column names)
    geometry: str  # point | line_or_point | polygon | any
    normalize: Callable[["EntityLoad", dict[str, Any], dict[str, Any]], None]  # fills the record
    active_status: str | None = "active"
    retired_status: str | None = "retired"
    containment: bool = False
    insert: bool = True
    geometry_required: bool = True
    geom_sql: str = "s.geom"
    before_match: Callable[["EntityLoad"], None] | None = None
    before_update: Callable[["EntityLoad"], None] | None = None
    after_apply: Callable[["EntityLoad"], None] | None = None


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


def pg_array(values: list[str]) -> str:
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def _text(row: dict, name: str, *, required: bool = False, limit: int = MAX_TEXT) -> str | None:
    value = row.get(name)
    if value is None or not str(value).strip():
        if required:
            raise Issue("missing_field", field=name)
        return None
    value = str(value).strip()
    if len(value) > limit:
        raise Issue("field_too_long", field=name, length=len(value), limit=limit)
    return value


def _name(row: dict, name: str = "name", *, required: bool = True) -> str | None:
    value = _text(row, name, required=required, limit=200)
    return clean_name(value) if value else None


def resolve_division(load: "EntityLoad", row: dict, *, levels=("village", "township", "county")) -> DivisionInfo:
    """The most specific division a row names by code (village, else township, else county);
    the codes it also gives for the levels above must agree. An ambiguous township code (the
    two authorities reuse each other's codes) is settled by the village or county the row names."""
    d = load.divisions
    raw = {level: _text(row, f"{level}_code", limit=40) for level in ("county", "township", "village")}
    county = d.by_code_or_issue(raw["county"], levels=("county",)) if raw["county"] else None
    if raw["village"]:
        info = d.by_code_or_issue(raw["village"], levels=("village",), within=county.id if county else None)
        if raw["township"] and info.township_id not in d.candidates(raw["township"]):
            raise Issue("wrong_parent", what=info.label, parent=raw["township"])
    elif raw["township"]:
        info = d.by_code_or_issue(raw["township"], levels=("township",), within=county.id if county else None)
    elif county is not None:
        info = county
    elif _text(row, "division_code", limit=40):
        info = d.by_code_or_issue(_text(row, "division_code"), levels=levels)
    else:
        raise Issue("missing_field", field="village_code / township_code / county_code")
    if county is not None and info.level != "county" and info.county_id != county.id:
        raise Issue("wrong_parent", what=info.label, parent=county.label)
    if info.level not in levels:
        raise Issue("division_level", what=info.label, level=info.level)
    return info


# --- place names ------------------------------------------------------------------------------


def _date(row: dict, name: str) -> str | None:
    value = _text(row, name, limit=40)
    if value is None:
        return None
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        raise Issue("bad_value", field=name, value=value, why_zh="应为 ISO 日期 YYYY-MM-DD",
                    why_en="expected an ISO date YYYY-MM-DD") from None


def _normalize_place(load: "EntityLoad", row: dict, out: dict) -> None:
    division = resolve_division(load, row)
    out["division_id"] = division.id
    name = _name(row)
    raw_category = _text(row, "category", required=True, limit=40)
    # one table of known categories (registry.placename_categories): code, Chinese name or synonym
    category = category_code(raw_category)
    if category is None:
        raise Issue("bad_value", field="category", value=raw_category,
                    why_zh=f"未知的地名类别，应为 {valid_categories(lang='zh')}",
                    why_en=f"unknown place-name category; expected one of {valid_categories(lang='en')}")
    former = _name(row, "former_name", required=False)
    out.update({
        "division_id": division.id, "county_id": division.county_id or division.id, "category": category,
        "name": name, "pinyin": _text(row, "pinyin", limit=200) or place_name_pinyin(
            name, natural_village=category == "natural_village"),
        "origin": _text(row, "origin"), "meaning": _text(row, "meaning"),
        "former_name": former if former != name else None, "former_until": _date(row, "former_until"),
    })
    # 专名/通名 and the romanization by the 1984 rules (registry.placenames.parts; migration 0009)
    from registry.placenames import parts

    specific, generic = _text(row, "specific_part", limit=100), _text(row, "generic_part", limit=20)
    if (specific is None) != (generic is None) or (specific is not None and specific + generic != name):
        raise Issue("bad_value", field="specific_part", value=f"{specific or ''}+{generic or ''}",
                    why_zh="专名与通名须同时给出，且合起来等于名称", why_en="give both parts; together they must spell the name")
    override = _text(row, "romanization_override", limit=200)
    derived = parts(name, category, specific=specific, generic=generic, override=override)
    out.update({"specific_part": derived["specific_part"], "generic_part": derived["generic_part"],
                "romanized": derived["romanized"], "romanization_override": override,
                "approved_by": _text(row, "approved_by", limit=200), "approved_on": _date(row, "approved_on"),
                "approval_ref": _text(row, "approval_ref", limit=200)})


def _place_before_update(load: "EntityLoad") -> None:
    # A place renamed through its id keeps its old name as a former name.
    load.x("""
        INSERT INTO place_name_aliases (place_name_id, name, kind, used_until, note, change_set_id)
        SELECT t.id, t.name, 'former', current_date, 'renamed by a load', :cs
        FROM {match} m JOIN {stage} s ON s.row_no = m.row_no JOIN place_names t ON t.id = m.target_id
        WHERE m.valid AND m.changed AND t.name <> s.name
          AND NOT EXISTS (SELECT 1 FROM place_name_aliases a WHERE a.place_name_id = t.id AND a.name = t.name)""")


def _place_after(load: "EntityLoad") -> None:
    added = load.x("""
        INSERT INTO place_name_aliases (place_name_id, name, kind, used_until, change_set_id)
        SELECT DISTINCT ON (p.id, s.former_name) p.id, s.former_name, 'former', s.former_until::date, :cs
        FROM {stage} s JOIN place_names p
          ON p.category = s.category AND p.division_id = s.division_id AND p.name = s.name
        WHERE s.reason IS NULL AND s.former_name IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM place_name_aliases a WHERE a.place_name_id = p.id AND a.name = s.former_name)
        ORDER BY p.id, s.former_name, s.row_no""").rowcount
    load.report.aliases_added += added


PLACE_NAMES = EntitySpec(
    kind="load_place_names", table="place_names",
    fields=("id", "name", "category", "county_code", "township_code", "village_code", "division_code", "pinyin",
            "origin", "meaning", "former_name", "former_until", "specific_part", "generic_part",
            "romanization_override", "approved_by", "approved_on", "approval_ref"),
    columns=(Column("county_id", "bigint"), Column("category"), Column("name"), Column("pinyin"), Column("origin"),
             Column("meaning"), Column("former_name", write=False, compare=False),
             Column("former_until", write=False, compare=False), Column("specific_part"), Column("generic_part"),
             Column("romanized"), Column("romanization_override"), Column("approved_by"),
             Column("approved_on", "date"), Column("approval_ref")),
    key=("category", "division_id", "name"), geometry="line_or_point", normalize=_normalize_place,
    geometry_required=False, before_update=_place_before_update, after_apply=_place_after,
)


# --- facilities -------------------------------------------------------------------------------
def _normalize_facility(load: "EntityLoad", row: dict, out: dict) -> None:
    division = resolve_division(load, row)
    out["division_id"] = division.id
    out.update({"category": _name(row, "category"), "name": _name(row),
                "address_text": _text(row, "address", limit=500), "phone": _text(row, "phone", limit=60)})


FACILITIES = EntitySpec(
    kind="load_facilities", table="facilities",
    fields=("id", "category", "name", "county_code", "township_code", "village_code", "division_code", "address",
            "phone"),
    columns=(Column("category"), Column("name"), Column("address_text"), Column("phone")),
    key=("division_id", "category", "name"), geometry="point", normalize=_normalize_facility,
    retired_status="closed", containment=True,
)


# --- heritage ---------------------------------------------------------------------------------
HERITAGE_LEVELS = {"county": "county", "city": "city", "province": "province", "national": "national",
                   "县级": "county", "区级": "county", "市级": "city", "省级": "province", "国家级": "national",
                   "provincial": "province", "candidate": "candidate", "候选": "candidate"}  # candidate: 0009
_TRUE, _FALSE = {"1", "true", "yes", "y", "t", "是"}, {"0", "false", "no", "n", "f", "否", ""}


def _former_names(row: dict) -> list[str]:
    value = _text(row, "former_names", limit=2000)
    if not value:
        return []
    if value.startswith("["):
        try:
            items = json.loads(value)
        except ValueError:
            raise Issue("bad_value", field="former_names", value=value, why_zh="JSON 列表无法解析",
                        why_en="not a valid JSON list") from None
    else:
        items = re.split(r"[;；,，、|/]", value)
    return [clean_name(str(v)) for v in items if str(v).strip()]


def _normalize_heritage(load: "EntityLoad", row: dict, out: dict) -> None:
    division = resolve_division(load, row)
    out["division_id"] = division.id
    name = _name(row)
    level_raw = _text(row, "level", required=True, limit=20)
    level = HERITAGE_LEVELS.get(level_raw.lower() if level_raw.isascii() else level_raw)
    if level is None:
        raise Issue("bad_value", field="level", value=level_raw, why_zh="应为 county/city/province/national/candidate",
                    why_en="expected county, city, province, national or candidate")
    year_raw = _text(row, "listed_year", limit=10)
    year = None
    if year_raw:
        y = year_raw[:-2] if year_raw.endswith(".0") else year_raw
        if not y.isdigit() or not 1900 <= int(y) <= 2100:
            raise Issue("bad_value", field="listed_year", value=year_raw, why_zh="应为年份", why_en="expected a year")
        year = int(y)
    out.update({"county_id": division.county_id or division.id, "name": name,
            "pinyin": _text(row, "pinyin_name", limit=200) or _text(row, "pinyin", limit=200) or place_name_pinyin(name),
            "level": level, "category": _name(row, "category"), "origin": _text(row, "origin"),
            "meaning": _text(row, "meaning"), "history": _text(row, "history"),
            "former_names": pg_array(_former_names(row)), "listed_year": year, "place_name_id": None})
    # the catalogue's own fields (migration 0009); `synthetic` marks generated items, never facts
    raw_synthetic = (_text(row, "synthetic", limit=10) or "").lower()
    if raw_synthetic not in _TRUE | _FALSE:
        raise Issue("bad_value", field="synthetic", value=raw_synthetic, why_zh="应为 true/false",
                    why_en="expected true or false")
    photos = [p.strip() for p in (_text(row, "photos", limit=2000) or "").split(";") if p.strip()]
    out.update({"catalogue": _text(row, "catalogue", limit=200), "batch": _text(row, "batch", limit=100),
                "listed_on": _date(row, "listed_on"), "listing_document": _text(row, "listing_document", limit=500),
                "description": _text(row, "description"), "protection": _text(row, "protection"),
                "photos": pg_array(photos), "source_url": _text(row, "source_url", limit=1000),
                "certainty": _text(row, "certainty", limit=500), "synthetic": raw_synthetic in _TRUE})


def _heritage_link(load: "EntityLoad") -> None:
    # Link an item to the place name of the same name in its county, when there is exactly one.
    load.x("""
        UPDATE {stage} s SET place_name_id = x.id
        FROM (SELECT s.row_no, min(p.id) AS id FROM {stage} s
              JOIN place_names p ON p.name = s.name AND p.county_id = s.county_id AND p.status <> 'retired'
              WHERE s.reason IS NULL GROUP BY s.row_no HAVING count(*) = 1) x
        WHERE s.row_no = x.row_no""")


HERITAGE = EntitySpec(
    kind="load_heritage", table="heritage_items",
    fields=("id", "name", "level", "category", "county_code", "township_code", "village_code", "division_code",
            "pinyin_name", "pinyin", "origin", "meaning", "history", "former_names", "listed_year",
            "catalogue", "batch", "listed_on", "listing_document", "description", "protection", "photos",
            "source_url", "certainty", "synthetic"),
    columns=(Column("county_id", "bigint", write=False, compare=False), Column("name"), Column("pinyin"),
             Column("level"), Column("category"), Column("origin"), Column("meaning"), Column("history"),
             Column("former_names", "text[]"), Column("listed_year", "smallint"),
             Column("place_name_id", "bigint"), Column("catalogue"), Column("batch"), Column("listed_on", "date"),
             Column("listing_document"), Column("description"), Column("protection"), Column("photos", "text[]"),
             Column("source_url"), Column("certainty"), Column("synthetic", "boolean")),
    key=("division_id", "name"), geometry="point", normalize=_normalize_heritage,
    active_status="listed", retired_status="delisted", containment=True, before_match=_heritage_link,
)


# --- division polygons ------------------------------------------------------------------------
def _normalize_division(load: "EntityLoad", row: dict, out: dict) -> None:
    raw = authority = None
    for name, authority in (("code", None), ("nbs_code", "nbs2023"), ("mca_code", "mca2025"),
                            ("division_code", None), ("village_code", None), ("township_code", None)):
        raw = _text(row, name, limit=40)
        if raw:
            break
    if not raw:
        raise Issue("missing_field", field="code / 区划代码")
    info = load.divisions.by_code_or_issue(raw, levels=("city", "county", "township", "village"),
                                           authority=authority)
    out.update({"ent_id": info.id, "division_id": info.id})
    name = _name(row, required=False)
    if name and normalize(name) not in {normalize(info.name), normalize(info.full_name)}:
        out["_warn"] = ("name_differs", {"name": name, "registered": info.name})


DIVISION_POLYGONS = EntitySpec(
    kind="load_divisions", table="divisions",
    fields=("code", "nbs_code", "mca_code", "division_code", "village_code", "township_code", "name"),
    columns=(), key=(), geometry="polygon", normalize=_normalize_division, active_status=None,
    retired_status=None, insert=False, geom_sql="ST_Multi(s.geom)",
)

SPECS = {s.kind: s for s in (PLACE_NAMES, FACILITIES, HERITAGE, DIVISION_POLYGONS)}


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
                row = {f: batch.values[f][i] for f in present}  # values as read: _text() strips
                raw_id = _text(row, "id", limit=40) if "id" in row else None
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
