"""Why a row of a loaded file was refused (or accepted with a warning).

Every reason has a stable code (what scripts and the reject file's `reason` column use) and a
message in Chinese then English. Parameters fill the `{…}` slots; they travel as JSON through
the staging table, so a message is rendered the same way whether Python or SQL found the fault.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from registry.placename_categories import CATEGORY_NAMES_ZH

# code -> (Chinese, English). Keep the codes stable: offices script against them.
REASONS: dict[str, tuple[str, str]] = {
    # structure of the row
    "wrong_field_count": ("字段数为 {found}，表头有 {expected} 列", "the row has {found} fields, the header {expected}"),
    "missing_field": ("缺少必填字段：{field}", "required field missing: {field}"),
    "field_too_long": ("字段 {field} 过长（{length} 字符，上限 {limit}）", "field {field} is too long ({length} characters, limit {limit})"),
    # division
    "bad_division_code": ("区划代码“{value}”不是 6、9 或 12 位数字", "division code {value!r} is not a 6-, 9- or 12-digit code"),
    "unknown_division": ("未找到区划：{what}", "no such division: {what}"),
    "ambiguous_division": ("“{what}”对应多个区划：{candidates}；请给出上级区划、区划代码，或用 --code-authority 指明代码体系",
                           "{what!r} names several divisions ({candidates}); give the parent division or the code, "
                           "or say which code authority the file uses with --code-authority"),
    "division_level": ("{what} 是{level}级区划，地址应挂在村（社区）上", "{what} is a {level}; addresses hang off a village or community"),
    "abolished_division": ("区划 {what} 已撤销", "division {what} is abolished"),
    "wrong_parent": ("{what} 不在 {parent} 之内", "{what} does not lie in {parent}"),
    # address parts
    "bad_number": ("门牌号“{value}”无法识别", "house number {value!r} not understood"),
    "bad_building": ("楼幢号“{value}”无法识别", "building {value!r} not understood"),
    "bad_unit": ("单元号“{value}”无法识别", "unit {value!r} not understood"),
    "bad_room": ("室号“{value}”无法识别", "room {value!r} not understood"),
    "bad_group": ("村民小组“{value}”无法识别", "villagers' group {value!r} not understood"),
    "incomplete_address": ("地址不完整：{what_zh}", "incomplete address: {what_en}"),
    "conflicting_fields": ("字段冲突：{what_zh}", "conflicting fields: {what_en}"),
    # places
    "unknown_place": ("{category_zh}“{name}”未在{scope}登记（可用 --create-places 一并登记）",
                      "{category} {name!r} is not registered in {scope} (use --create-places to register it)"),
    "place_other_kind": ("“{name}”在{scope}登记为{other_zh}，不是{category_zh}；请填入对应的字段"
                         "（--create-places 会重复登记同一地名；确为另一处同名{category_zh}的，请先用 "
                         "registry load place-names 登记）",
                         "{name!r} is registered in {scope} as a {other}, not a {category}: put it in that "
                         "field (--create-places would register the same place twice; if it really is another "
                         "{category} of that name, register it first with registry load place-names)"),
    "ambiguous_place": ("{category_zh}“{name}”在{scope}有 {count} 条同名记录", "{category} {name!r} has {count} entries in {scope}"),
    # geometry
    "missing_geometry": ("缺少坐标", "no coordinates"),
    "bad_coordinates": ("坐标无效：{value}", "invalid coordinates: {value}"),
    "bad_geometry": ("几何无效：{value}", "invalid geometry: {value}"),
    "outside_division": ("点位在 {division} 范围之外 {distance_m} 米（容差 {tolerance_m} 米）",
                         "point lies {distance_m} m outside {division} (tolerance {tolerance_m} m)"),
    # identity and duplicates
    "bad_id": ("标识“{value}”不是正整数", "id {value!r} is not a positive integer"),
    "unknown_id": ("标识 {value} 在库中不存在", "no registered entry with id {value}"),
    "duplicate_in_file": ("与文件第 {first_row} 行重复", "duplicate of row {first_row} of the file"),
    "duplicate_in_registry": ("与库中已登记的 {other_id} 重复", "duplicates registered entry {other_id}"),
    # other entities
    "bad_value": ("字段 {field} 的值“{value}”无效：{why_zh}", "field {field} has an invalid value {value!r}: {why_en}"),
}

# Accepted, but worth a look: written to the reject file with severity "warning".
WARNINGS: dict[str, tuple[str, str]] = {
    "near_boundary": ("点位在 {division} 范围外 {distance_m} 米，在容差 {tolerance_m} 米内",
                      "point lies {distance_m} m outside {division}, within the tolerance of {tolerance_m} m"),
    "former_place_name": ("“{name}”是旧名，已按现名“{current}”登记", "{name!r} is a former name; recorded under {current!r}"),
    "duplicate_door": ("{street}{door} 在同一乡镇街道的两个村社区都有：本行在{village}，{other}在{other_village}；"
                       "同一道路的门牌号应唯一，请核实",
                       "{street}{door} appears in two villages of one township: this row in {village}, {other_en} "
                       "in {other_village}; a door number is unique along its road, please check"),
    "name_differs": ("文件中的名称“{name}”与库中“{registered}”不同（未修改名称）",
                     "the file's name {name!r} differs from the registered {registered!r} (name not changed)"),
}

CATEGORY_ZH = {**CATEGORY_NAMES_ZH, "street": "道路"}  # the one table: registry.placename_categories


class _Default(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def _render(template: str, params: dict[str, Any]) -> str:
    try:
        return template.format_map(_Default(params))
    except (ValueError, IndexError, KeyError):  # pragma: no cover - a malformed template
        return template


def message(code: str, params: dict[str, Any] | None = None) -> tuple[str, str]:
    """(Chinese, English) message for a reason or warning code."""
    zh, en = REASONS.get(code) or WARNINGS.get(code) or (code, code)
    params = params or {}
    return _render(zh, params), _render(en, params)


def severity(code: str) -> str:
    return "warning" if code in WARNINGS else "reject"


def encode_params(params: dict[str, Any]) -> str:
    return json.dumps(params, ensure_ascii=False, separators=(",", ":"))


def decode_params(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"value": text}
    return value if isinstance(value, dict) else {"value": value}


@dataclass(frozen=True)
class RowIssue:
    """One refused (or warned) row: what the reject file and the report show."""

    row: int
    code: str
    params: dict[str, Any]

    @property
    def severity(self) -> str:
        return severity(self.code)

    @property
    def message_zh(self) -> str:
        return message(self.code, self.params)[0]

    @property
    def message_en(self) -> str:
        return message(self.code, self.params)[1]
