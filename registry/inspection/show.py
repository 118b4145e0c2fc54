"""The diff of an inspection change set as text lines (the CLI's `changes show`)."""
from __future__ import annotations

from registry.changes import ChangeSet

_MAX = 50  # rows per section; `--json` shows all


def diff_lines(cs: ChangeSet) -> list[str]:
    d = cs.details or {}
    if cs.kind != "inspection" or "lines" not in d:
        return []
    out = [f"第 {d['round']} 轮联检数据包 / inspection round {d['round']} package: {d.get('source')}"]
    out.append(f"界线修测 / lines re-surveyed: {len(d['lines'])}")
    for line in d["lines"][:_MAX]:
        out.append(f"  {line['code']} {line['left']['name']}—{line['right']['name']}: "
                   f"长度 {line['length_m_before']:.1f} → {line['length_m_after']:.1f} m; "
                   f"划入{line['left']['name']} {line['area_to_left_m2']:.1f} m², "
                   f"划入{line['right']['name']} {line['area_to_right_m2']:.1f} m²; 地址 {len(line['addresses'])} 个")
        for a in line["addresses"][:_MAX]:
            out.append(f"    地址 / address {a['id']} {a['code']}: {a['from_village']} → {a['to_village']}")
    moved = [m for m in d["markers"] if "moved_m" in m]
    out.append(f"界桩移位 / markers moved: {len(moved)}")
    out += [f"  {m['number']}: {m['moved_m']:.2f} m" for m in moved[:_MAX]]
    cond = [m for m in d["markers"] if "condition" in m]
    out.append(f"现状变化 / condition changes: {len(cond)}")
    out += [f"  {m['number']}: {m['condition'][0]} → {m['condition'][1]}" for m in cond[:_MAX]]
    other = [m for m in d["markers"] if "fields" in m]
    if other:
        out.append(f"属性变化 / other attributes: {len(other)}")
        out += [f"  {m['number']}: " + ", ".join(f"{k} {v[0]} → {v[1]}" for k, v in m["fields"].items())
                for m in other[:_MAX]]
    out.append(f"新设界桩 / markers added: {len(d['markers_added'])}")
    out += [f"  {m['number']} ({m['condition']})" for m in d["markers_added"][:_MAX]]
    out.append(f"撤除界桩 / markers removed: {len(d['markers_removed'])}")
    out += [f"  {m['number']}" for m in d["markers_removed"][:_MAX]]
    out.append(f"检查记录 / records: {len(d['records'])}")
    return out
