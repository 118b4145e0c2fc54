"""The field package's schema (外业数据包): its layers, fields, Chinese aliases and value lists.

One description that the writer (loaders/field_package.py), the reader (files.py), the validator and the
README's field table all use. Field names are at most 10 ASCII characters so that the same
schema survives a Shapefile's .dbf; the Chinese names travel as aliases (GeoPackage
gpkg_data_columns) and in the `value_lists` and `package_info` tables of every format.

In the spirit of MZ/T 149-2020 (界桩数据交换格式) and MZ/T 150-2020 (界线数据交换格式): a marker
is identified by its full number (line code + 3-digit serial + type letter), lines by their code,
the position in CGCS2000 (EPSG:4490) longitude/latitude, the reference objects (方位物) by marker
number and sequence with bearing (degrees from north, clockwise) and distance (m), photos by
file name (`;`-separated, relative to the package's `photos/` folder).
"""
from __future__ import annotations

from dataclasses import dataclass, field

SRID = 4490
LINES, MARKERS, REFERENCE_OBJECTS, RECORDS = "lines", "markers", "reference_objects", "records"
VALUE_LISTS, PACKAGE_INFO = "value_lists", "package_info"
REQUIRED_LAYERS = (LINES, MARKERS)

CONDITIONS = {
    "intact": ("完好", "intact"),
    "damaged": ("损坏", "damaged"),
    "worn": ("字迹不清", "lettering worn"),
    "missing": ("丢失", "missing"),
    "displaced": ("移位", "displaced"),
    "new": ("新设", "newly set"),
}
TYPE_LETTERS = {
    "Q": ("单立界桩", "single marker"),
    "A": ("同号双立（小代码一侧）", "pair, side of the smaller division code"),
    "B": ("同号双立", "pair, other side"),
    "C": ("同号三立", "triple, first"),
    "D": ("同号三立", "triple, second"),
    "E": ("同号三立", "triple, third"),
}
RECORD_TARGETS = {"line": ("界线", "boundary line"), "marker": ("界桩", "marker")}
VALUE_LIST_OF = {"condition": CONDITIONS, "type": TYPE_LETTERS, "target": RECORD_TARGETS}


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # str / int / float / date
    alias: str  # Chinese name shown by QGIS/ArcGIS
    required: bool = False
    values: str | None = None  # name of a value list (VALUE_LIST_OF)
    note: str = ""


@dataclass(frozen=True)
class Layer:
    name: str
    alias: str
    geometry: str | None  # MultiLineString / Point / None (an attribute table)
    fields: tuple[Field, ...] = field(default_factory=tuple)

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


LAYERS: dict[str, Layer] = {
    LINES: Layer(LINES, "界线", "MultiLineString", (
        Field("line_id", "int", "界线标识", True, note="registry id, do not edit / 登记库标识，勿改"),
        Field("line_ver", "int", "导出时版本", True, note="version at export / 导出时的版本"),
        Field("code", "str", "界线编码", True),
        Field("name", "str", "界线名称"),
        Field("level", "str", "界线级别"),
        Field("left_code", "str", "左侧区划代码", True),
        Field("left_name", "str", "左侧区划名称"),
        Field("right_code", "str", "右侧区划代码"),
        Field("right_name", "str", "右侧区划名称"),
        Field("length_m", "float", "长度（米）", note="informative; recomputed / 仅供参考，重新计算"),
        Field("county_ln", "str", "所在县级界线", note="a township line on a county line: re-survey that one"),
    )),
    MARKERS: Layer(MARKERS, "界桩", "Point", (
        Field("marker_id", "int", "界桩标识", note="empty for a newly set marker / 新设界桩留空"),
        Field("marker_ver", "int", "导出时版本"),
        Field("number", "str", "界桩编号", True, note="line code + 3-digit serial + type letter"),
        Field("line_code", "str", "所在界线编码", True),
        Field("serial", "int", "序号"),
        Field("type", "str", "类型字母", values="type"),
        Field("kind", "str", "界桩类型"),
        Field("material", "str", "材质"),
        Field("elev_m", "float", "高程（米）"),
        Field("left_code", "str", "左侧区划代码"),
        Field("right_code", "str", "右侧区划代码"),
        Field("installed", "date", "埋设日期"),
        Field("condition", "str", "现状", True, values="condition"),
        Field("photos", "str", "照片", note="file names, ';'-separated / 文件名，以分号分隔"),
    )),
    REFERENCE_OBJECTS: Layer(REFERENCE_OBJECTS, "方位物", "Point", (
        Field("marker_no", "str", "界桩编号", True),
        Field("seq", "int", "方位物序号", True),
        Field("name", "str", "方位物名称", True),
        Field("kind", "str", "方位物类别"),
        Field("bearing", "float", "方位角（度）"),
        Field("dist_m", "float", "距离（米）"),
    )),
    RECORDS: Layer(RECORDS, "检查记录", None, (
        Field("target", "str", "对象", True, values="target"),
        Field("line_code", "str", "界线编码"),
        Field("marker_no", "str", "界桩编号"),
        Field("date", "date", "检查日期"),
        Field("left_team", "str", "左侧检查组"),
        Field("right_team", "str", "右侧检查组"),
        Field("condition", "str", "现状", values="condition"),
        Field("notes", "str", "备注"),
        Field("sheet_ref", "str", "联检记录表编号"),
    )),
    VALUE_LISTS: Layer(VALUE_LISTS, "值域", None, (
        Field("list", "str", "值域"), Field("value", "str", "值"), Field("label_zh", "str", "中文"),
        Field("label_en", "str", "English"),
    )),
    PACKAGE_INFO: Layer(PACKAGE_INFO, "数据包信息", None, (
        Field("key", "str", "项"), Field("value", "str", "值"),
    )),
}


def value_list_rows() -> list[dict[str, str]]:
    return [{"list": name, "value": value, "label_zh": zh, "label_en": en}
            for name, values in VALUE_LIST_OF.items() for value, (zh, en) in values.items()]
