"""The registry's schema as SQLAlchemy Core tables (the migrations create exactly this).

Conventions, because they carry the registry's promises:
- `id` is the stable identifier: drawn from a sequence, never changed, never reused.
- Versioned entities keep their current state here and every earlier state in `<table>_history`
  (same columns, PK (id, version)). Triggers (see migrations 0001, 0002) copy the old row on
  every UPDATE and refuse DELETE, so no writer can lose history: retire, never delete. Since
  0002 the row trigger `keep_history` (registry_version_row) checks and bumps the version and
  the statement trigger `write_history` (registry_write_history) copies the old rows set-based;
  a new versioned table needs both (or the generic one-trigger registry_keep_history of 0001).
- `valid_from`/`valid_to` bound each version; `change_set_id` says which change set wrote it.
- Geometries are CGCS2000 (EPSG:4490).
"""
from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION, JSONB

SRID = 4490

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Tables whose rows are versioned through <name>_history by the keep-history trigger.
VERSIONED_TABLES = (
    "divisions",
    "boundary_lines",
    "boundary_markers",
    "marker_reference_objects",
    "place_names",
    "heritage_items",
    "addresses",
    "doorplates",
    "facilities",
)


def _versioning() -> list[Column]:
    return [
        Column("version", Integer, nullable=False, server_default="1"),
        Column("valid_from", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("valid_to", DateTime(timezone=True)),
        Column("change_set_id", BigInteger, ForeignKey("change_sets.id")),
        Column("source", Text),
    ]


def _geom(kind: str, nullable: bool = True) -> Column:
    return Column("geom", Geometry(kind, srid=SRID, spatial_index=False), nullable=nullable)


change_sets = Table(
    "change_sets",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("kind", Text, nullable=False),  # load_addresses, load_divisions, adjustment, inspection …
    Column("status", Text, nullable=False, server_default="proposed"),
    Column("author", Text, nullable=False),
    Column("reason", Text),
    Column("approval_ref", Text),  # 批复文号
    Column("source", Text),
    Column("checksum", Text),  # SHA-256 of the loaded file
    Column("counts", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("approved_at", DateTime(timezone=True)),
    Column("approved_by", Text),
    Column("applied_at", DateTime(timezone=True)),
    CheckConstraint(
        "status IN ('proposed','approved','applied','rejected')", name="status"
    ),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("entity_kind", Text),
    Column("entity_id", BigInteger),
    Column("change_set_id", BigInteger, ForeignKey("change_sets.id")),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_audit_log_change_set", "change_set_id"),
)

divisions = Table(
    "divisions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("level", Text, nullable=False),
    Column("name", Text, nullable=False),  # the standard short form people write: 祝良村
    Column("full_name", Text, nullable=False),  # the registered form: 祝良村委会
    Column("parent_id", BigInteger, ForeignKey("divisions.id")),
    Column("nbs_code", Text),  # 统计用区划代码 (NBS 2023)
    Column("mca_code", Text),  # 民政部区划代码 (MCA 2025)
    Column("status", Text, nullable=False, server_default="active"),
    _geom("MULTIPOLYGON"),
    *_versioning(),
    CheckConstraint("level IN ('province','city','county','township','village')", name="level"),
    CheckConstraint("status IN ('active','abolished')", name="status"),
    Index("ix_divisions_parent", "parent_id"),
    Index("ix_divisions_nbs_code", "nbs_code"),
    Index("ix_divisions_mca_code", "mca_code"),
    Index("ix_divisions_geom", "geom", postgresql_using="gist"),
)

# Every code a division has carried under each authority, so old codes keep resolving.
division_codes = Table(
    "division_codes",
    metadata,
    Column("code", Text, nullable=False, primary_key=True),
    Column("authority", Text, nullable=False, primary_key=True),
    Column("valid_from", Date, nullable=False, primary_key=True),
    Column("division_id", BigInteger, ForeignKey("divisions.id"), nullable=False),
    Column("valid_to", Date),
    CheckConstraint("authority IN ('nbs2023','mca2025','registry')", name="authority"),
    Index("ix_division_codes_division", "division_id"),
)

boundary_lines = Table(
    "boundary_lines",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("level", Text, nullable=False),  # county / township: the level of the divisions it separates
    Column("name", Text),  # e.g. 吴兴区—南浔区线
    Column("left_division_id", BigInteger, ForeignKey("divisions.id"), nullable=False),
    Column("right_division_id", BigInteger, ForeignKey("divisions.id")),  # NULL on the city's outer edge
    Column("status", Text, nullable=False, server_default="active"),
    _geom("MULTILINESTRING"),
    *_versioning(),
    Index("ix_boundary_lines_geom", "geom", postgresql_using="gist"),
)

boundary_markers = Table(
    "boundary_markers",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("number", Text, nullable=False),  # 界桩编号
    Column("boundary_line_id", BigInteger, ForeignKey("boundary_lines.id")),
    Column("kind", Text),  # 单立 / 同号双立 / 三面型 …
    Column("material", Text),
    Column("installed_on", Date),
    Column("status", Text, nullable=False, server_default="active"),
    _geom("POINT"),
    *_versioning(),
    Index("ix_boundary_markers_geom", "geom", postgresql_using="gist"),
)

# --- boundary lines and markers as full entities (migration 0006) ---------------------------------
# Appended after the versioning columns, on the tables and their history, so the history trigger's
# row copy keeps its column order. The code and numbering rules: registry.boundaries, registry.markers.
MARKER_TYPE_LETTERS = ("Q", "A", "B", "C", "D", "E")  # single; same-number pair; triple
MARKER_CONDITIONS = ("intact", "damaged", "worn", "missing", "displaced", "new")  # 完好 损坏 字迹不清 丢失 移位 新设
for _col in (
    Column("code", Text),  # stable line code, unique among active lines
    Column("length_m", DOUBLE_PRECISION),  # geodesic length in metres
    Column("neighbour_name", Text),  # on the city's outer edge: the neighbour where known, else 市界
    Column("county_line_id", BigInteger, ForeignKey("boundary_lines.id")),  # a township line on a county line
):
    boundary_lines.append_column(_col)
boundary_lines.append_constraint(CheckConstraint("level IN ('county', 'township')", name="level"))
Index("uq_boundary_lines_code_active", boundary_lines.c.code, unique=True,
      postgresql_where=boundary_lines.c.status == "active")
Index("ix_boundary_lines_left", boundary_lines.c.left_division_id)
Index("ix_boundary_lines_right", boundary_lines.c.right_division_id)
for _col in (
    Column("serial", Integer),  # 001–999 along its line
    Column("type_letter", Text),
    Column("elevation_m", DOUBLE_PRECISION),
    Column("left_division_id", BigInteger, ForeignKey("divisions.id")),
    Column("right_division_id", BigInteger, ForeignKey("divisions.id")),
    Column("condition", Text),
    Column("photos", ARRAY(Text)),  # photo file references (MZ/T 149 layout: photos/<number>_<n>.jpg)
):
    boundary_markers.append_column(_col)
boundary_markers.append_constraint(CheckConstraint(
    "type_letter IN ('Q', 'A', 'B', 'C', 'D', 'E')", name="type_letter"))
boundary_markers.append_constraint(CheckConstraint(
    "condition IN ('intact', 'damaged', 'worn', 'missing', 'displaced', 'new')", name="condition"))
boundary_markers.append_constraint(CheckConstraint("serial BETWEEN 1 AND 999", name="serial"))
Index("uq_boundary_markers_number_active", boundary_markers.c.number, unique=True,
      postgresql_where=boundary_markers.c.status == "active")
Index("ix_boundary_markers_line", boundary_markers.c.boundary_line_id)

# 方位物: the objects a marker is found again by (bearing from north, distance), ≥ 3 per marker.
marker_reference_objects = Table(
    "marker_reference_objects",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("marker_id", BigInteger, ForeignKey("boundary_markers.id"), nullable=False),
    Column("seq", SmallInteger, nullable=False),
    Column("name", Text, nullable=False),  # e.g. 电线杆, 石桥东端
    Column("kind", Text),  # pole / tree / bridge / building / road / water …
    Column("bearing_deg", DOUBLE_PRECISION, nullable=False),  # from the marker, 0–360 from north
    Column("distance_m", DOUBLE_PRECISION, nullable=False),
    Column("status", Text, nullable=False, server_default="active"),
    _geom("POINT"),
    *_versioning(),
    CheckConstraint("seq > 0", name="seq"),
    CheckConstraint("bearing_deg >= 0 AND bearing_deg < 360", name="bearing"),
    CheckConstraint("distance_m > 0", name="distance"),
    Index("uq_marker_reference_objects_marker_seq", "marker_id", "seq", unique=True,
          postgresql_where=text("status = 'active'")),
    Index("ix_marker_reference_objects_geom", "geom", postgresql_using="gist"),
)

inspection_rounds = Table(
    "inspection_rounds",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("year", SmallInteger, nullable=False),
    Column("scope", Text),
    Column("status", Text, nullable=False, server_default="open"),
    Column("started_on", Date),
    Column("completed_on", Date),
    Column("change_set_id", BigInteger, ForeignKey("change_sets.id")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

inspection_records = Table(
    "inspection_records",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("round_id", BigInteger, ForeignKey("inspection_rounds.id"), nullable=False),
    Column("boundary_line_id", BigInteger, ForeignKey("boundary_lines.id")),
    Column("marker_id", BigInteger, ForeignKey("boundary_markers.id")),
    Column("finding", Text, nullable=False),  # intact / damaged / missing / moved / line_discrepancy
    Column("description", Text),
    Column("inspector", Text),
    Column("recorded_on", Date),
    Column("geom", Geometry("GEOMETRY", srid=SRID, spatial_index=False)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_inspection_records_round", "round_id"),
)

place_names = Table(
    "place_names",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("category", Text, nullable=False),  # road, compound, natural_village, bridge, river, hill …
    Column("name", Text, nullable=False),
    Column("pinyin", Text),  # by the place-name rules: Renmin Lu
    Column("division_id", BigInteger, ForeignKey("divisions.id"), nullable=False),
    Column("county_id", BigInteger, ForeignKey("divisions.id"), nullable=False),
    Column("origin", Text),  # 来历
    Column("meaning", Text),  # 含义
    Column("status", Text, nullable=False, server_default="active"),
    Column("geom", Geometry("GEOMETRY", srid=SRID, spatial_index=False)),
    *_versioning(),
    Index("ix_place_names_county_name", "county_id", "category", "name"),
    Index("ix_place_names_division", "division_id"),
    Index("ix_place_names_geom", "geom", postgresql_using="gist"),
)

# Aliases and former names (with the dates they were in use), so old names keep resolving.
place_name_aliases = Table(
    "place_name_aliases",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("place_name_id", BigInteger, ForeignKey("place_names.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False, server_default="former"),  # former / alias / abbreviation
    Column("used_from", Date),
    Column("used_until", Date),
    Column("note", Text),
    Column("change_set_id", BigInteger, ForeignKey("change_sets.id")),
    CheckConstraint("kind IN ('former','alias','abbreviation')", name="kind"),
    Index("ix_place_name_aliases_place", "place_name_id"),
    Index("ix_place_name_aliases_name", "name"),
)

heritage_items = Table(
    "heritage_items",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("pinyin", Text),
    Column("level", Text, nullable=False),  # county / city / province
    Column("category", Text, nullable=False),  # 千年古镇, 千年古村落, 古桥 …
    Column("division_id", BigInteger, ForeignKey("divisions.id"), nullable=False),
    Column("place_name_id", BigInteger, ForeignKey("place_names.id")),
    Column("origin", Text),
    Column("meaning", Text),
    Column("history", Text),
    Column("former_names", ARRAY(Text), nullable=False, server_default="{}"),
    Column("listed_year", SmallInteger),
    Column("status", Text, nullable=False, server_default="listed"),
    _geom("POINT"),
    *_versioning(),
    CheckConstraint("level IN ('county','city','province','national','candidate')", name="level"),  # 0009
    Index("ix_heritage_items_division", "division_id"),
)

addresses = Table(
    "addresses",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("division_id", BigInteger, ForeignKey("divisions.id"), nullable=False),  # village/community
    Column("street_id", BigInteger, ForeignKey("place_names.id")),
    Column("compound_id", BigInteger, ForeignKey("place_names.id")),  # 小区 or 自然村
    # Empty string, not NULL, for absent parts: the natural key below needs equality to work.
    Column("group_no", Text, nullable=False, server_default=""),  # 3组
    Column("number", Text, nullable=False, server_default=""),  # standard form: 12-1号
    Column("number_main", Integer),  # 12, for range and parity queries
    Column("building", Text, nullable=False, server_default=""),  # 5幢
    Column("unit", Text, nullable=False, server_default=""),  # 2单元
    Column("room", Text, nullable=False, server_default=""),  # 301室
    Column("full_text", Text, nullable=False),  # the composed standard address
    Column("code", Text, nullable=False),  # derived hierarchical code (see registry.addresses)
    Column("local_seq", Integer, nullable=False),  # per-village sequence used in the code
    Column("status", Text, nullable=False, server_default="active"),
    _geom("POINT"),
    *_versioning(),
    CheckConstraint("status IN ('planned','active','retired')", name="status"),
    Index("ix_addresses_division_seq", "division_id", "local_seq"),  # migration 0002: next code per village
    Index("ix_addresses_street_number", "street_id", "number_main"),
    Index("ix_addresses_compound", "compound_id"),
    Index("ix_addresses_code", "code"),
    Index("ix_addresses_geom", "geom", postgresql_using="gist"),
)

# One identifier per natural key, for ever: a retired address that reappears in a survey is
# reactivated under its old id, never given a new one.
Index(
    "uq_addresses_natural_key",
    addresses.c.division_id,
    func.coalesce(addresses.c.street_id, 0),
    func.coalesce(addresses.c.compound_id, 0),
    addresses.c.group_no,
    addresses.c.number,
    addresses.c.building,
    addresses.c.unit,
    addresses.c.room,
    unique=True,
)

# Every code an address has carried: printed codes keep resolving after adjustments.
address_codes = Table(
    "address_codes",
    metadata,
    Column("code", Text, primary_key=True),
    Column("address_id", BigInteger, ForeignKey("addresses.id"), nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("valid_to", DateTime(timezone=True)),
    Index("ix_address_codes_address", "address_id"),
)

doorplates = Table(
    "doorplates",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("address_id", BigInteger, ForeignKey("addresses.id"), nullable=False),
    Column("kind", Text, nullable=False, server_default="door"),  # door 门牌 / building 楼牌 / unit 单元牌 / flat 户牌
    Column("status", Text, nullable=False, server_default="issued"),
    Column("replaced_by_id", BigInteger, ForeignKey("doorplates.id")),
    Column("reason", Text),
    Column("issued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("ended_at", DateTime(timezone=True)),
    *_versioning(),
    CheckConstraint("kind IN ('door','building','unit','flat')", name="kind"),
    # suspended: the address was retired (migration 0005); the plate comes back if the address does
    CheckConstraint("status IN ('issued','active','suspended','replaced','revoked')", name="status"),
    Index("ix_doorplates_address", "address_id"),
)

facilities = Table(
    "facilities",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("category", Text, nullable=False),  # 居家养老服务照料中心, 幸福邻里中心, 儿童之家 …
    Column("name", Text, nullable=False),
    Column("division_id", BigInteger, ForeignKey("divisions.id"), nullable=False),
    Column("address_text", Text),
    Column("phone", Text),
    Column("status", Text, nullable=False, server_default="active"),
    _geom("POINT"),
    *_versioning(),
    Index("ix_facilities_division", "division_id"),
    Index("ix_facilities_geom", "geom", postgresql_using="gist"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("agency", Text, nullable=False),
    Column("prefix", Text, nullable=False, unique=True),  # shown in lists; the secret is never stored
    Column("key_hash", Text, nullable=False),  # SHA-256 of the whole key
    Column("scopes", ARRAY(Text), nullable=False),
    Column("rate_limit_per_minute", Integer, nullable=False, server_default="600"),
    Column("note", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
)


# --- doorplates (migration 0004) -----------------------------------------------------------------
from sqlalchemy import LargeBinary  # noqa: E402  (kept with the tables that use it)

# HMAC secrets that sign the QR tokens; the small id travels in every token. Old keys verify
# until retired. The secrets are read by registry.doorplates only and never served by the API.
doorplate_keys = Table(
    "doorplate_keys",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("secret", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("retired_at", DateTime(timezone=True)),
    Column("note", Text),
    CheckConstraint("id > 0", name="id"),
)

# The key a plate's token was signed with (so the printed QR is reproducible). Appended to the
# table (and its history) by 0004; see the migration for the live-plate uniqueness index.
doorplates.append_column(Column("key_id", SmallInteger, ForeignKey("doorplate_keys.id")))
Index("uq_doorplates_live", doorplates.c.address_id, doorplates.c.kind, unique=True,
      postgresql_where=doorplates.c.status.in_(("issued", "active")))
Index("ix_doorplates_replaced_by", doorplates.c.replaced_by_id,
      postgresql_where=doorplates.c.replaced_by_id.isnot(None))

# Problems citizens report from the scan page: no name, phone, IP or device is stored.
doorplate_reports = Table(
    "doorplate_reports",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("plate_id", BigInteger, ForeignKey("doorplates.id"), nullable=False),
    Column("kind", Text, nullable=False),  # damaged / wrong / missing / faded
    Column("text", Text),  # at most 500 characters
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("status", Text, nullable=False, server_default="open"),
    Column("closed_at", DateTime(timezone=True)),
    Column("closed_reason", Text),
    Column("closed_by_plate_id", BigInteger, ForeignKey("doorplates.id")),
    CheckConstraint("kind IN ('damaged', 'wrong', 'missing', 'faded')", name="kind"),
    CheckConstraint("char_length(text) <= 500", name="text"),
    CheckConstraint("status IN ('open', 'closed')", name="status"),
    Index("ix_doorplate_reports_plate", "plate_id", "status"),
)

# Scans per plate and day (Asia/Shanghai): a count, nothing about who scanned.
doorplate_scans = Table(
    "doorplate_scans",
    metadata,
    Column("plate_id", BigInteger, ForeignKey("doorplates.id"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("count", Integer, nullable=False, server_default="0"),
)
# The scan page's nearest services: KNN over the active facilities (migration 0004).
Index("ix_facilities_active_geom", facilities.c.geom, postgresql_using="gist",
      postgresql_where=facilities.c.status == "active")

# --- inspections (migration 0007) ----------------------------------------------------------------
# Who applied or rejected a change set (the author proposed it, approved_by approved it).
change_sets.append_column(Column("applied_by", Text))
change_sets.append_column(Column("rejected_by", Text))
change_sets.append_column(Column("rejected_at", DateTime(timezone=True)))
Index("ix_change_sets_kind_status", change_sets.c.kind, change_sets.c.status)
# A round: its number (4 = 第四轮), years `year`..`year_to`, scope; records are observations
# (never edited, not versioned), written when the package's change set is applied.
inspection_rounds.append_column(Column("number", SmallInteger))
inspection_rounds.append_column(Column("year_to", SmallInteger))
inspection_rounds.append_constraint(CheckConstraint("status IN ('open', 'closed')", name="status"))
Index("uq_inspection_rounds_number", inspection_rounds.c.number, unique=True)
inspection_records.append_column(Column("change_set_id", BigInteger, ForeignKey("change_sets.id")))
inspection_records.append_column(Column("left_team", Text))
inspection_records.append_column(Column("right_team", Text))
inspection_records.append_column(Column("condition", Text))  # intact / damaged / worn / missing / displaced / new
inspection_records.append_column(Column("reference_measurements", JSONB, nullable=False,
                                        server_default=text("'[]'::jsonb")))
inspection_records.append_column(Column("sheet_ref", Text))  # 联检记录表 number
Index("ix_inspection_records_change_set", inspection_records.c.change_set_id)
Index("ix_inspection_records_marker", inspection_records.c.marker_id)
Index("ix_inspection_records_line", inspection_records.c.boundary_line_id)

# --- division adjustments (migration 0008) -----------------------------------------------------
# One row per adjustment (区划调整): its change set, the approval document (批复文号) and the date it
# took effect, or where the document is unknown the date it is known to be in force by (an upper
# bound). The triggers honour the transaction-local `registry.valid_time` (see 0008).
division_adjustments = Table(
    "division_adjustments",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("change_set_id", BigInteger, ForeignKey("change_sets.id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("approval_ref", Text),
    Column("effective_on", Date),
    Column("known_in_force_by", Date),
    Column("note", Text),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("kind IN ('merge', 'split', 'rename', 'recode', 'transfer')", name="kind"),
    CheckConstraint("effective_on IS NOT NULL OR known_in_force_by IS NOT NULL", name="dated"),
    Index("ix_division_adjustments_change_set", "change_set_id"),
)

# The division that took over an abolished one, so its old code answers with the successor.
division_successors = Table(
    "division_successors",
    metadata,
    Column("division_id", BigInteger, ForeignKey("divisions.id"), primary_key=True),
    Column("successor_id", BigInteger, ForeignKey("divisions.id"), primary_key=True),
    Column("adjustment_id", BigInteger, ForeignKey("division_adjustments.id"), nullable=False),
)

# --- place names by the national rules, the heritage catalogue (migration 0009) ----------------
# Appended to the tables and their history. romanized: registry.text.romanization; a
# romanization_override wins over the rules and, being a column, is versioned with the row.
from sqlalchemy import Boolean  # noqa: E402  (kept with the tables that use it)

for _col in (
    Column("specific_part", Text),  # 专名
    Column("generic_part", Text),  # 通名
    Column("romanized", Text),  # by the 1984 rules: Renmin Lu
    Column("romanization_override", Text),
    Column("approved_by", Text),  # the approving body
    Column("approved_on", Date),
    Column("approval_ref", Text),  # 批复文号
):
    place_names.append_column(_col)
for _col in (
    Column("catalogue", Text),  # the list: 浙江省千年古镇（古村落）地名文化遗产 …
    Column("batch", Text),  # 第二批
    Column("listed_on", Date),
    Column("listing_document", Text),
    Column("description", Text),
    Column("protection", Text),  # protection measures
    Column("photos", ARRAY(Text)),  # photo file references
    Column("source_url", Text),
    Column("certainty", Text),  # how sure the fact is, in the source's words
    Column("synthetic", Boolean, nullable=False, server_default=text("false")),  # generated, not a fact
):
    heritage_items.append_column(_col)

# --- the search change log, readable on replicas (migration 0013) ------------------------------
# Every payload the search triggers NOTIFY is also a row here (the transaction's id in `xid`, an
# xid8), so an API reading from a standby follows the changes (registry/search/follow.py).
from sqlalchemy.types import UserDefinedType  # noqa: E402  (kept with the table that uses it)


class Xid8(UserDefinedType):
    cache_ok = True

    def get_col_spec(self, **_kw) -> str:
        return "xid8"


search_changes = Table(
    "search_changes",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("xid", Xid8(), nullable=False, server_default=text("pg_current_xact_id()")),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("payload", Text, nullable=False),
    Index("ix_search_changes_xid", "xid"),
)

# --- platform speed (migration 0010) -------------------------------------------------------------
# The change feed finds the rows a change set wrote by (change_set_id, id); the history tables get
# (change_set_id, id, version) in the migration (they are not mirrored here).
for _t in (divisions, boundary_lines, boundary_markers, marker_reference_objects, place_names, heritage_items,
           addresses, doorplates, facilities):
    Index(f"ix_{_t.name}_change_set", _t.c.change_set_id, _t.c.id)
Index("ix_change_sets_applied", change_sets.c.applied_at, change_sets.c.id,
      postgresql_where=change_sets.c.status == "applied")
# The address tiles below z16 draw the door-level addresses (registry/tiles.py ADDRESS_DOORS).
Index("ix_addresses_door_geom", addresses.c.geom, postgresql_using="gist",
      postgresql_where=text("status = 'active' AND unit = '' AND room = ''"))
# Export jobs (api/export_jobs.py), seen by every API worker; the running worker holds the advisory
# lock `lock_key`, so a job whose worker died is found out (the lock is free) and marked failed.
export_jobs = Table(
    "export_jobs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("lock_key", BigInteger, nullable=False, unique=True, autoincrement=True),
    Column("collection", Text, nullable=False),
    Column("format", Text, nullable=False),
    Column("agency", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="queued"),
    Column("rows_total", BigInteger),
    Column("rows_written", BigInteger, nullable=False, server_default="0"),
    Column("error", Text),
    Column("path", Text),
    Column("worker", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
    Index("ix_export_jobs_status", "status"),
)
