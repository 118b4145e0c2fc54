"""The feature collections the registry publishes (OGC API – Features, exports): one table here.

Each collection is a public view of one versioned table: the columns a citizen or an agency may
see (no tokens, no internal sequences, no `source`), the rows that are in force (active, listed,
issued …), and the attributes that may be filtered on (the queryables). Everything that serves
features — `registry.features.query` for the OGC API, `registry.exports` for the files — builds
its SQL from these definitions, so a column is published or hidden in one place.

The SQL of a collection reads its versioned table through `v`: the current rows, or (for a
`datetime` / `--as-of`) the version of each row in force then, from the table and its
`<table>_history` (see `source_sql`). Joined tables (division names, a plate's address) are read
as they are now.
"""
from __future__ import annotations

from dataclasses import dataclass, field

STORAGE_SRID = 4490
# The file formats a collection is exported in (registry.exports, `registry export`, GET /v1/exports).
EXPORT_FORMATS = ("gpkg", "shp", "geojson", "csv", "fgb")


@dataclass(frozen=True)
class Prop:
    name: str  # the published attribute name (ASCII, a safe SQL identifier: quoted from here only)
    sql: str  # its expression over `v` and the collection's joins
    type: str = "string"  # JSON Schema type: string, integer, number, boolean; or date, date-time
    title: str = ""
    queryable: bool = True


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    table: str  # the versioned table (with <table>_history)
    geometry_type: str  # GeoJSON type of the geometry: Point, MultiPolygon, MultiLineString, Geometry
    props: tuple[Prop, ...]
    geom: str = "v.geom"
    joins: str = ""
    base: str = "TRUE"  # which rows of the table belong to the collection (e.g. a division level)
    public: str = "v.status = 'active'"  # which versions are shown
    division: str | None = "v.division_id"  # the division a row belongs to, for --division
    keywords: tuple[str, ...] = field(default=())

    def prop(self, name: str) -> Prop | None:
        return next((p for p in self.props if p.name == name), None)

    @property
    def queryables(self) -> tuple[Prop, ...]:
        return tuple(p for p in self.props if p.queryable)


_VERSION = (
    Prop("version", "v.version", "integer", "版本 / version"),
    Prop("valid_from", "v.valid_from", "date-time", "本版本生效时间 / this version in force since"),
)
_DIVISION_OF = "LEFT JOIN divisions d ON d.id = v.division_id"
_IN_DIVISION = (
    Prop("division_code", "d.nbs_code", "string", "所属区划代码 / code of the division it lies in"),
    Prop("division_name", "d.name", "string", "所属区划 / division it lies in"),
)


def _divisions(level: str, zh: str) -> Collection:
    return Collection(
        id=f"divisions-{level}", title=f"{zh} / {level} divisions",
        description=f"湖州市{zh}（行政区划，CGCS2000）/ Huzhou's {level}-level administrative divisions",
        table="divisions", geometry_type="MultiPolygon", base=f"level = '{level}'",
        joins="LEFT JOIN divisions p ON p.id = v.parent_id", division="v.id",
        props=(
            Prop("name", "v.name", title="名称 / name"),
            Prop("full_name", "v.full_name", title="全称 / registered name"),
            Prop("level", "v.level", title="层级 / level"),
            Prop("mca_code", "v.mca_code", title="民政部区划代码 (MCA 2025)"),
            Prop("nbs_code", "v.nbs_code", title="统计用区划代码 (NBS 2023)"),
            Prop("parent_code", "coalesce(p.mca_code, p.nbs_code)", title="上级区划代码 / parent code"),
            Prop("parent_name", "p.name", title="上级区划 / parent"),
            Prop("status", "v.status", title="状态 / status"),
            *_VERSION,
        ),
        keywords=("行政区划", "divisions", level),
    )


_SIDES = """LEFT JOIN divisions da ON da.id = v.left_division_id
            LEFT JOIN divisions db ON db.id = v.right_division_id"""
_SIDE_PROPS = (
    Prop("left_code", "coalesce(da.mca_code, da.nbs_code)", title="左侧区划代码 / left division code"),
    Prop("left_name", "da.name", title="左侧区划 / left division"),
    Prop("right_code", "coalesce(db.mca_code, db.nbs_code)", title="右侧区划代码 / right division code"),
    Prop("right_name", "db.name", title="右侧区划 / right division"),
)

COLLECTIONS: dict[str, Collection] = {c.id: c for c in (
    _divisions("county", "县区"),
    _divisions("township", "乡镇街道"),
    _divisions("village", "村社区"),
    Collection(
        id="boundary-lines", title="界线 / boundary lines",
        description="县级、乡级行政区域界线 / county and township boundary lines",
        table="boundary_lines", geometry_type="MultiLineString", joins=_SIDES, division="v.left_division_id",
        props=(
            Prop("code", "v.code", title="界线编码 / line code"),
            Prop("name", "v.name", title="名称 / name"),
            Prop("level", "v.level", title="层级 / level (county, township)"),
            Prop("status", "v.status", title="状态 / status"),
            Prop("length_m", "round(v.length_m::numeric, 1)::float8", "number", "长度（米）/ geodesic length, m"),
            Prop("neighbour_name", "v.neighbour_name", title="市外相邻 / neighbour outside the city"),
            *_SIDE_PROPS, *_VERSION,
        ),
        keywords=("界线", "boundary lines"),
    ),
    Collection(
        id="boundary-markers", title="界桩 / boundary markers",
        description="行政区域界线上的界桩 / boundary markers on the lines",
        table="boundary_markers", geometry_type="Point", division="v.left_division_id",
        joins=_SIDES + "\n            LEFT JOIN boundary_lines l ON l.id = v.boundary_line_id",
        props=(
            Prop("number", "v.number", title="界桩编号 / marker number"),
            Prop("serial", "v.serial", "integer", "序号 / serial along its line"),
            Prop("type_letter", "v.type_letter", title="类型码 / type letter"),
            Prop("kind", "v.kind", title="类型 / kind"),
            Prop("material", "v.material", title="材质 / material"),
            Prop("installed_on", "v.installed_on", "date", "埋设日期 / installed on"),
            Prop("condition", "v.condition", title="状况 / condition"),
            Prop("elevation_m", "v.elevation_m", "number", "高程（米）/ elevation, m"),
            Prop("status", "v.status", title="状态 / status"),
            Prop("line_code", "l.code", title="所在界线编码 / line code"),
            *_SIDE_PROPS, *_VERSION,
        ),
        keywords=("界桩", "boundary markers"),
    ),
    Collection(
        id="streets", title="道路街巷 / streets",
        description="道路、街、巷等地名 / streets, roads and lanes",
        table="place_names", geometry_type="Geometry", base="category = 'road'", joins=_DIVISION_OF,
        props=(
            Prop("name", "v.name", title="名称 / name"),
            Prop("pinyin", "v.pinyin", title="罗马字母拼写 / pinyin"),
            *_IN_DIVISION,
            Prop("origin", "v.origin", title="来历 / origin", queryable=False),
            Prop("meaning", "v.meaning", title="含义 / meaning", queryable=False),
            Prop("status", "v.status", title="状态 / status"),
            *_VERSION,
        ),
        keywords=("道路街巷", "streets"),
    ),
    Collection(
        id="place-names", title="其他地名 / other place names",
        description="小区、自然村、桥梁、河流、山体等地名 / compounds, natural villages, bridges, rivers, hills …",
        table="place_names", geometry_type="Geometry", base="category <> 'road'", joins=_DIVISION_OF,
        props=(
            Prop("name", "v.name", title="名称 / name"),
            Prop("category", "v.category", title="类别 / category"),
            Prop("pinyin", "v.pinyin", title="罗马字母拼写 / pinyin"),
            *_IN_DIVISION,
            Prop("origin", "v.origin", title="来历 / origin", queryable=False),
            Prop("meaning", "v.meaning", title="含义 / meaning", queryable=False),
            Prop("status", "v.status", title="状态 / status"),
            *_VERSION,
        ),
        keywords=("地名", "place names"),
    ),
    Collection(
        id="addresses", title="标准地址 / addresses",
        description="在用的标准地址（公开视图）/ the active standard addresses (public view)",
        table="addresses", geometry_type="Point",
        joins=_DIVISION_OF + """
            LEFT JOIN place_names s ON s.id = v.street_id
            LEFT JOIN place_names c ON c.id = v.compound_id""",
        props=(
            Prop("address", "v.full_text", title="标准地址 / standard address"),
            Prop("code", "v.code", title="地址编码 / address code"),
            Prop("status", "v.status", title="状态 / status"),
            *_IN_DIVISION,
            Prop("street", "s.name", title="道路街巷 / street"),
            Prop("compound", "CASE WHEN c.category <> 'natural_village' THEN c.name END", title="小区 / compound"),
            Prop("natural_village", "CASE WHEN c.category = 'natural_village' THEN c.name END",
                 title="自然村 / natural village"),
            Prop("group", "nullif(v.group_no, '')", title="组 / group"),
            Prop("number", "nullif(v.number, '')", title="门牌号 / house number"),
            Prop("number_main", "v.number_main", "integer", "主号 / main number"),
            Prop("building", "nullif(v.building, '')", title="幢 / building"),
            Prop("unit", "nullif(v.unit, '')", title="单元 / unit"),
            Prop("room", "nullif(v.room, '')", title="室 / room"),
            *_VERSION,
        ),
        keywords=("地址", "addresses"),
    ),
    Collection(
        id="heritage-items", title="地名文化遗产 / place-name heritage",
        description="地名文化遗产保护名录 / the place-name cultural heritage catalogue",
        table="heritage_items", geometry_type="Point", public="v.status = 'listed'", joins=_DIVISION_OF,
        props=(
            Prop("name", "v.name", title="名称 / name"),
            Prop("pinyin", "v.pinyin", title="罗马字母拼写 / pinyin"),
            Prop("level", "v.level", title="名录级别 / list level"),
            Prop("category", "v.category", title="类别 / category"),
            *_IN_DIVISION,
            Prop("listed_year", "v.listed_year", "integer", "入录年份 / year listed"),
            Prop("former_names", "array_to_string(v.former_names, '、')", title="曾用名 / former names"),
            Prop("origin", "v.origin", title="来历 / origin", queryable=False),
            Prop("meaning", "v.meaning", title="含义 / meaning", queryable=False),
            Prop("history", "v.history", title="历史沿革 / history", queryable=False),
            Prop("status", "v.status", title="状态 / status"),
            *_VERSION,
        ),
        keywords=("地名文化遗产", "heritage"),
    ),
    Collection(
        id="facilities", title="服务设施 / facilities",
        description="民政服务设施 / civil-affairs service facilities",
        table="facilities", geometry_type="Point", joins=_DIVISION_OF,
        props=(
            Prop("name", "v.name", title="名称 / name"),
            Prop("category", "v.category", title="类别 / category"),
            Prop("address", "v.address_text", title="地址 / address"),
            Prop("phone", "v.phone", title="电话 / phone"),
            *_IN_DIVISION,
            Prop("status", "v.status", title="状态 / status"),
            *_VERSION,
        ),
        keywords=("服务设施", "facilities"),
    ),
    Collection(
        id="doorplates", title="门牌 / doorplates",
        description="门牌（公开视图：编号、类别、状态、地址、位置；不含二维码令牌）/ doorplates (public view: "
                    "id, kind, status, address, point; no tokens)",
        table="doorplates", geometry_type="Point", geom="a.geom", public="v.status IN ('issued', 'active')",
        joins="JOIN addresses a ON a.id = v.address_id", division="a.division_id",
        props=(
            Prop("kind", "v.kind", title="类别 / kind (door, building, unit, flat)"),
            Prop("status", "v.status", title="状态 / status"),
            Prop("address", "a.full_text", title="标准地址 / standard address"),
            Prop("address_id", "v.address_id", "integer", "地址标识 / address id"),
            *_VERSION,
        ),
        keywords=("门牌", "doorplates"),
    ),
)}


def source_sql(c: Collection, *, at: bool) -> str:
    """The rows of `v`: current ones, or (`at`) the version of each row in force between the bound
    parameters :t_start and :t_end (equal for an instant), from the table and its history."""
    if not at:
        return f"SELECT * FROM {c.table} WHERE {c.base}"
    # History rows have the same columns in the same order (the trigger copies them positionally).
    return f"""SELECT DISTINCT ON (id) * FROM (
                 SELECT * FROM {c.table}_history WHERE {c.base}
                 UNION ALL SELECT * FROM {c.table} WHERE {c.base}) u
               WHERE valid_from <= :t_end AND (valid_to IS NULL OR valid_to > :t_start)
               ORDER BY id, version DESC"""


def select_sql(c: Collection, *, at: bool) -> str:
    """One row per feature: id, geom (EPSG:4490), _division_id, then the published attributes."""
    cols = ",\n       ".join(f'{p.sql} AS "{p.name}"' for p in c.props)
    division = c.division or "NULL::bigint"
    return f"""WITH v AS ({source_sql(c, at=at)})
SELECT v.id AS id, {c.geom} AS geom, {division} AS _division_id,
       {cols}
FROM v {c.joins}
WHERE {c.public}"""
