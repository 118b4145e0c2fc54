"""Column mapping: an office's own column names onto the registry's fields.

Common names are recognised without a mapping (门牌号, 楼栋, 单元, 室号, 所属社区, 经度, 纬度 …,
and the 10-character names Shapefiles truncate to). A mapping file (TOML) names the rest and
can carry defaults and file options:

    [columns]              # registry field = "the file's column"
    number = "门牌号码"
    building = "楼幢"
    village = "所属村（社区）"
    lon = "X坐标"
    lat = "Y坐标"

    [defaults]             # a value for every row, for a field the file lacks
    county = "吴兴区"

    [file]                 # the same as the command-line options (these win over the file's)
    crs = "gcj02"
    encoding = "gbk"
    layer = "门牌"
"""
from __future__ import annotations

import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from loaders.errors import FileError

# registry field -> accepted column names (compared case-, width- and space-insensitively)
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "address_id", "地址标识", "地址id", "标识"),
    "division_code": ("division_code", "division_c", "village_code", "village_co", "区划代码", "行政区划代码",
                      "村社区代码", "社区代码", "所属社区代码", "所属村社区代码", "村级代码"),
    "county": ("county", "区县", "县区", "所属区县", "县（区）"),
    "township": ("township", "乡镇", "乡镇街道", "街道", "所属乡镇", "所属街道", "所属乡镇街道"),
    "village": ("village", "村社区", "社区", "所属社区", "所属村社区", "所属村", "行政村", "村（社区）"),
    "street": ("street", "road", "街路巷", "街路巷名", "道路", "道路名称", "街路巷名称"),
    "compound": ("compound", "小区", "小区名称", "小区名"),
    "natural_village": ("natural_village", "natural_vi", "自然村", "自然村名"),
    "group": ("group", "group_no", "组", "村民小组", "组号"),
    "number": ("number", "house_number", "house_numb", "门牌号", "门牌", "门号", "门牌号码"),
    "building": ("building", "楼栋", "楼幢", "幢", "栋", "楼号", "幢号", "楼栋号"),
    "unit": ("unit", "单元", "单元号"),
    "room": ("room", "室号", "户室号", "房号", "室", "户号"),
    "lon": ("lon", "lng", "long", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
    "wkt": ("wkt", "geometry", "geom", "the_geom", "shape"),
    # other kinds
    "name": ("name", "名称", "地名", "标准名称"),
    "category": ("category", "类别", "类型"),
    "code": ("code", "代码"),
    "nbs_code": ("nbs_code",),
    "mca_code": ("mca_code",),
    "county_code": ("county_code", "county_cod", "区县代码"),
    "township_code": ("township_code", "township_c", "乡镇代码", "乡镇街道代码"),
    "former_name": ("former_name", "former_nam", "曾用名", "旧名"),
    "former_until": ("former_until", "former_unt", "former_unti", "曾用名止用日期"),
    "former_names": ("former_names", "曾用名列表"),
    "origin": ("origin", "来历"),
    "meaning": ("meaning", "含义"),
    "history": ("history", "历史沿革", "沿革"),
    "pinyin": ("pinyin", "拼音", "罗马字母拼写"),
    "pinyin_name": ("pinyin_name", "pinyin_nam"),
    "level": ("level", "级别", "保护级别"),
    "listed_year": ("listed_year", "listed_yea", "公布年份"),
    "address": ("address", "地址"),
    "phone": ("phone", "电话", "联系电话"),
}
FILE_OPTIONS = {"crs", "encoding", "layer", "format"}


def _fold(name: str) -> str:
    return "".join(unicodedata.normalize("NFKC", name).split()).lower()


@dataclass
class Mapping:
    columns: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    file: dict[str, str] = field(default_factory=dict)
    path: Path | None = None


def load_mapping(path: Path | None) -> Mapping:
    if path is None:
        return Mapping()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileError("bad_mapping", f"映射文件不存在：{path}", f"mapping file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FileError("bad_mapping", f"映射文件格式错误：{exc}", f"mapping file is not valid TOML: {exc}") from None
    unknown_sections = set(data) - {"columns", "defaults", "file"}
    if unknown_sections:
        raise FileError("bad_mapping", f"映射文件有未知的节：{', '.join(sorted(unknown_sections))}",
                        f"unknown section(s) in the mapping: {', '.join(sorted(unknown_sections))} "
                        "(expected [columns], [defaults], [file])")
    columns = {str(k): str(v) for k, v in (data.get("columns") or {}).items()}
    defaults = {str(k): str(v) for k, v in (data.get("defaults") or {}).items()}
    file_opts = {str(k): str(v) for k, v in (data.get("file") or {}).items()}
    bad = set(file_opts) - FILE_OPTIONS
    if bad:
        raise FileError("bad_mapping", f"[file] 中未知的选项：{', '.join(sorted(bad))}",
                        f"unknown option(s) in [file]: {', '.join(sorted(bad))}")
    return Mapping(columns=columns, defaults=defaults, file=file_opts, path=Path(path))


def resolve_columns(source_columns: list[str], fields: tuple[str, ...], mapping: Mapping) -> dict[str, str]:
    """registry field -> the source column holding it (mapping first, then the known names)."""
    unknown = (set(mapping.columns) | set(mapping.defaults)) - set(fields)
    if unknown:
        raise FileError("bad_mapping", f"映射中有本类数据不认识的字段：{', '.join(sorted(unknown))}",
                        f"the mapping names field(s) this kind of data does not have: {', '.join(sorted(unknown))}; "
                        f"known fields: {', '.join(fields)}")
    by_fold = {}
    for col in source_columns:
        by_fold.setdefault(_fold(col), col)
    out: dict[str, str] = {}
    for f, col in mapping.columns.items():
        if col not in source_columns:
            found = by_fold.get(_fold(col))
            if found is None:
                raise FileError("bad_mapping", f"映射的列“{col}”（{f}）不在文件中；文件的列：{', '.join(source_columns)}",
                                f"mapped column {col!r} (for {f}) is not in the file; its columns: "
                                f"{', '.join(source_columns)}")
            col = found
        out[f] = col
    taken = set(out.values())
    for f in fields:
        if f in out or f in mapping.defaults:
            continue
        for alias in ALIASES.get(f, (f,)):
            col = by_fold.get(_fold(alias))
            if col is not None and col not in taken:
                out[f] = col
                taken.add(col)
                break
    return out
