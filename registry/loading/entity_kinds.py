"""The kinds of entity a load takes besides addresses: what a kind is (`EntitySpec`: its columns,
natural key, geometry, statuses, row normaliser and SQL hooks) and the four kinds, place names
(with their former names), facilities, heritage items and division polygons, each with the
Python normaliser that resolves a row's division and checks its values. The machinery that runs
a kind is `registry.loading.entities.EntityLoad`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Callable

from registry.heritage import level_code
from registry.loading.directory import DivisionInfo, Issue, clean_name
from registry.placename_categories import category_code, valid_categories
from registry.text import normalize, place_name_pinyin

if TYPE_CHECKING:
    from registry.loading.entities import EntityLoad

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


def pg_array(values: list[str]) -> str:
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def field_text(row: dict, name: str, *, required: bool = False, limit: int = MAX_TEXT) -> str | None:
    """A row's value stripped (None when empty), refused when missing but required or too long."""
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
    value = field_text(row, name, required=required, limit=200)
    return clean_name(value) if value else None


def resolve_division(load: "EntityLoad", row: dict, *, levels=("village", "township", "county")) -> DivisionInfo:
    """The most specific division a row names by code (village, else township, else county);
    the codes it also gives for the levels above must agree. An ambiguous township code (the
    two authorities reuse each other's codes) is settled by the village or county the row names."""
    d = load.divisions
    raw = {level: field_text(row, f"{level}_code", limit=40) for level in ("county", "township", "village")}
    county = d.by_code_or_issue(raw["county"], levels=("county",)) if raw["county"] else None
    if raw["village"]:
        info = d.by_code_or_issue(raw["village"], levels=("village",), within=county.id if county else None)
        if raw["township"] and info.township_id not in d.candidates(raw["township"]):
            raise Issue("wrong_parent", what=info.label, parent=raw["township"])
    elif raw["township"]:
        info = d.by_code_or_issue(raw["township"], levels=("township",), within=county.id if county else None)
    elif county is not None:
        info = county
    elif field_text(row, "division_code", limit=40):
        info = d.by_code_or_issue(field_text(row, "division_code"), levels=levels)
    else:
        raise Issue("missing_field", field="village_code / township_code / county_code")
    if county is not None and info.level != "county" and info.county_id != county.id:
        raise Issue("wrong_parent", what=info.label, parent=county.label)
    if info.level not in levels:
        raise Issue("division_level", what=info.label, level=info.level)
    return info


# --- place names ------------------------------------------------------------------------------


def _date(row: dict, name: str) -> str | None:
    value = field_text(row, name, limit=40)
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
    raw_category = field_text(row, "category", required=True, limit=40)
    # one table of known categories (registry.placename_categories): code, Chinese name or synonym
    category = category_code(raw_category)
    if category is None:
        raise Issue("bad_value", field="category", value=raw_category,
                    why_zh=f"未知的地名类别，应为 {valid_categories(lang='zh')}",
                    why_en=f"unknown place-name category; expected one of {valid_categories(lang='en')}")
    former = _name(row, "former_name", required=False)
    out.update({
        "division_id": division.id, "county_id": division.county_id or division.id, "category": category,
        "name": name, "pinyin": field_text(row, "pinyin", limit=200) or place_name_pinyin(
            name, natural_village=category == "natural_village"),
        "origin": field_text(row, "origin"), "meaning": field_text(row, "meaning"),
        "former_name": former if former != name else None, "former_until": _date(row, "former_until"),
    })
    # 专名/通名 and the romanization by the 1984 rules (registry.placenames.parts; migration 0009)
    from registry.placenames import parts

    specific, generic = field_text(row, "specific_part", limit=100), field_text(row, "generic_part", limit=20)
    if (specific is None) != (generic is None) or (specific is not None and specific + generic != name):
        raise Issue("bad_value", field="specific_part", value=f"{specific or ''}+{generic or ''}",
                    why_zh="专名与通名须同时给出，且合起来等于名称", why_en="give both parts; together they must spell the name")
    override = field_text(row, "romanization_override", limit=200)
    derived = parts(name, category, specific=specific, generic=generic, override=override)
    out.update({"specific_part": derived["specific_part"], "generic_part": derived["generic_part"],
                "romanized": derived["romanized"], "romanization_override": override,
                "approved_by": field_text(row, "approved_by", limit=200), "approved_on": _date(row, "approved_on"),
                "approval_ref": field_text(row, "approval_ref", limit=200)})


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
                "address_text": field_text(row, "address", limit=500), "phone": field_text(row, "phone", limit=60)})


FACILITIES = EntitySpec(
    kind="load_facilities", table="facilities",
    fields=("id", "category", "name", "county_code", "township_code", "village_code", "division_code", "address",
            "phone"),
    columns=(Column("category"), Column("name"), Column("address_text"), Column("phone")),
    key=("division_id", "category", "name"), geometry="point", normalize=_normalize_facility,
    retired_status="closed", containment=True,
)


# --- heritage ---------------------------------------------------------------------------------
_TRUE, _FALSE = {"1", "true", "yes", "y", "t", "是"}, {"0", "false", "no", "n", "f", "否", ""}


def _former_names(row: dict) -> list[str]:
    value = field_text(row, "former_names", limit=2000)
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
    level_raw = field_text(row, "level", required=True, limit=20)
    level = level_code(level_raw)  # registry.heritage's spellings, the API's too
    if level is None:
        raise Issue("bad_value", field="level", value=level_raw, why_zh="应为 county/city/province/national/candidate",
                    why_en="expected county, city, province, national or candidate")
    year_raw = field_text(row, "listed_year", limit=10)
    year = None
    if year_raw:
        y = year_raw[:-2] if year_raw.endswith(".0") else year_raw
        if not y.isdigit() or not 1900 <= int(y) <= 2100:
            raise Issue("bad_value", field="listed_year", value=year_raw, why_zh="应为年份", why_en="expected a year")
        year = int(y)
    out.update({"county_id": division.county_id or division.id, "name": name,
            "pinyin": field_text(row, "pinyin_name", limit=200) or field_text(row, "pinyin", limit=200) or place_name_pinyin(name),
            "level": level, "category": _name(row, "category"), "origin": field_text(row, "origin"),
            "meaning": field_text(row, "meaning"), "history": field_text(row, "history"),
            "former_names": pg_array(_former_names(row)), "listed_year": year, "place_name_id": None})
    # the catalogue's own fields (migration 0009); `synthetic` marks generated items, never facts
    raw_synthetic = (field_text(row, "synthetic", limit=10) or "").lower()
    if raw_synthetic not in _TRUE | _FALSE:
        raise Issue("bad_value", field="synthetic", value=raw_synthetic, why_zh="应为 true/false",
                    why_en="expected true or false")
    photos = [p.strip() for p in (field_text(row, "photos", limit=2000) or "").split(";") if p.strip()]
    out.update({"catalogue": field_text(row, "catalogue", limit=200), "batch": field_text(row, "batch", limit=100),
                "listed_on": _date(row, "listed_on"), "listing_document": field_text(row, "listing_document", limit=500),
                "description": field_text(row, "description"), "protection": field_text(row, "protection"),
                "photos": pg_array(photos), "source_url": field_text(row, "source_url", limit=1000),
                "certainty": field_text(row, "certainty", limit=500), "synthetic": raw_synthetic in _TRUE})


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
        raw = field_text(row, name, limit=40)
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
