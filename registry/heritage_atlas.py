"""The heritage atlas (地名文化遗产名录图集): a cover, a table of contents, one entry per item
(its map drawn from the registry's geometries, origin, romanization, listing, source and
certainty), and an index by county. As HTML (`atlas_html`) and as a PDF (`atlas_pdf`, fpdf2 with
the CJK font registry.doorplates.printing finds). Synthetic items say so on their entry.
"""
from __future__ import annotations

import html
import io
import logging
from datetime import date
from typing import Any

from sqlalchemy import Connection

from registry.heritage import SYNTHETIC_NOTE, item_map_svg, list_items

log = logging.getLogger(__name__)

TITLE = "湖州市地名文化遗产名录图集"
TITLE_EN = "Atlas of the place-name cultural heritage of Huzhou"


def build_atlas(conn: Connection, *, division: str | None = None, include_synthetic: bool = True) -> dict[str, Any]:
    items = list_items(conn, division=division, include_synthetic=include_synthetic, limit=2000)
    for n, item in enumerate(items, start=1):
        item["entry"] = n
        item["map_svg"] = item_map_svg(conn, item)
    counties: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        counties.setdefault(item["county"]["name"] or "（未知 / unknown）", []).append(item)
    return {"title": TITLE, "title_en": TITLE_EN, "date": date.today().isoformat(), "items": items,
            "counties": counties, "real": sum(not i["synthetic"] for i in items),
            "synthetic": sum(i["synthetic"] for i in items)}


def _fields(item: dict[str, Any]) -> list[tuple[str, str]]:
    listing = " ".join(x for x in (item["catalogue"], item["batch"],
                                   str(item["listed_year"]) if item["listed_year"] else None) if x)
    rows = [
        ("罗马字拼写 / romanization", item["romanized"]),
        ("类别 / category", item["category"]),
        ("名录级别 / level", item["level_name"]),
        ("列入 / listing", listing or "—"),
        ("所在区划 / division", f"{item['county']['name'] or ''} {item['division']['name']}".strip()),
        ("来历 / origin", item["origin"] or "—"),
    ]
    for label, key in (("含义 / meaning", "meaning"), ("沿革 / history", "history"),
                       ("说明 / description", "description"), ("保护措施 / protection", "protection"),
                       ("批准文件 / listing document", "listing_document")):
        if item[key]:
            rows.append((label, item[key]))
    if item["former_names"]:
        rows.append(("曾用名 / former names", "、".join(item["former_names"])))
    rows.append(("来源 / source", item["source_url"] or "—"))
    rows.append(("可信度 / certainty", item["certainty"] or "—"))
    if item["synthetic"]:
        rows.append(("注意 / note", SYNTHETIC_NOTE))
    return rows


def atlas_html(atlas: dict[str, Any]) -> str:
    e = html.escape
    out = ["<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>",
           f"<title>{e(atlas['title'])}</title><meta name='viewport' content='width=device-width,initial-scale=1'>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:auto;padding:1em;color:#222}"
           "section.entry{page-break-before:always;border-top:1px solid #ccc;margin-top:2em}"
           "th{text-align:left;vertical-align:top;white-space:nowrap;padding-right:1em;color:#555}"
           ".synthetic{background:#fff3e0;border-left:4px solid #ef6c00;padding:.3em .6em}"
           "svg{max-width:100%;height:auto;border:1px solid #ddd}</style></head><body>",
           f"<header><h1>{e(atlas['title'])}</h1><p>{e(atlas['title_en'])}</p>",
           f"<p>编制日期 / compiled {e(atlas['date'])}：真实条目 {atlas['real']} 条，合成条目 {atlas['synthetic']} 条 / "
           f"{atlas['real']} real and {atlas['synthetic']} synthetic entries. 地图由登记库自有几何生成 / maps drawn "
           "from the registry's own geometries.</p></header>",
           "<nav><h2>目录 / contents</h2><ol>"]
    for item in atlas["items"]:
        mark = "（合成 / synthetic）" if item["synthetic"] else ""
        out.append(f"<li><a href='#item-{item['id']}'>{e(item['name'])} {e(item['romanized'])}</a>{mark}</li>")
    out.append("</ol></nav>")
    for item in atlas["items"]:
        out.append(f"<section class='entry' id='item-{item['id']}'><h2>{item['entry']}. {e(item['name'])} "
                   f"<small>{e(item['romanized'])}</small></h2>")
        if item["synthetic"]:
            out.append(f"<p class='synthetic'>{e(SYNTHETIC_NOTE)}</p>")
        out.append(item["map_svg"])
        out.append("<table>")
        for label, value in _fields(item):
            v = e(value)
            if value.startswith("http"):
                v = f"<a href='{e(value)}' rel='noopener'>{v}</a>"
            out.append(f"<tr><th>{e(label)}</th><td>{v}</td></tr>")
        out.append("</table></section>")
    out.append("<section class='entry'><h2>按县区索引 / index by county</h2>")
    for county, items in atlas["counties"].items():
        links = "、".join(f"<a href='#item-{i['id']}'>{e(i['name'])}</a>（{i['entry']}）" for i in items)
        out.append(f"<h3>{e(county)}</h3><p>{links}</p>")
    out.append("</section></body></html>")
    return "\n".join(out)


def atlas_pdf(atlas: dict[str, Any]) -> bytes:
    from fpdf import FPDF

    from registry.doorplates.printing import find_font

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_font("cjk", "", str(find_font()))
    # cover
    pdf.add_page()
    pdf.set_font("cjk", size=26)
    pdf.ln(60)
    pdf.multi_cell(0, 14, atlas["title"], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=13)
    pdf.multi_cell(0, 8, atlas["title_en"], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(20)
    pdf.set_font("cjk", size=11)
    pdf.multi_cell(0, 7, f"编制日期 / compiled {atlas['date']}\n真实条目 {atlas['real']} 条，合成条目 {atlas['synthetic']} 条"
                         f" / {atlas['real']} real, {atlas['synthetic']} synthetic entries\n"
                         "地图由登记库自有几何生成，不含外部底图 / maps from the registry's own geometries",
                   align="C", new_x="LMARGIN", new_y="NEXT")
    # contents: filled in at the end with the pages the entries really start on (fpdf2's TOC
    # placeholder), so a long entry running over a page never puts the contents out of step
    contents_pages = 1 + max(0, len(atlas["items"])) // 40

    def contents(pdf_, outline) -> None:
        pdf_.set_font("cjk", size=16)
        pdf_.cell(0, 10, "目录 / contents", new_x="LMARGIN", new_y="NEXT")
        pdf_.set_font("cjk", size=10)
        for section in outline:
            pdf_.cell(160, 6, section.name)
            pdf_.cell(0, 6, str(section.page_number), align="R", new_x="LMARGIN", new_y="NEXT")

    pdf.add_page()
    pdf.insert_toc_placeholder(contents, pages=contents_pages, reset_page_indices=False)
    pages: dict[int, int] = {}
    for n, item in enumerate(atlas["items"]):
        if n:  # the placeholder's last page break already opened the first entry's page
            pdf.add_page()
        pages[item["id"]] = pdf.page_no()
        mark = "（合成）" if item["synthetic"] else ""
        pdf.start_section(f"{item['entry']}. {item['name']} {item['romanized']}{mark}")
        pdf.set_font("cjk", size=16)
        pdf.cell(0, 10, f"{item['entry']}. {item['name']}  {item['romanized']}", new_x="LMARGIN", new_y="NEXT")
        if item["synthetic"]:
            pdf.set_font("cjk", size=9)
            pdf.set_text_color(200, 80, 0)
            pdf.cell(0, 6, SYNTHETIC_NOTE, new_x="LMARGIN", new_y="NEXT")
            pdf.set_text_color(0, 0, 0)
        try:
            pdf.image(io.BytesIO(item["map_svg"].encode("utf-8")), w=150)
        except Exception:  # fpdf2's SVG support is partial: the entry still prints
            log.warning("atlas: the map of %s could not be embedded", item["name"], exc_info=True)
            pdf.set_font("cjk", size=9)
            pdf.cell(0, 6, "（地图见 HTML 图集 / the map is in the HTML atlas）", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        for label, value in _fields(item):
            pdf.set_font("cjk", size=8)
            pdf.set_text_color(90, 90, 90)
            pdf.cell(0, 5, label, new_x="LMARGIN", new_y="NEXT")
            pdf.set_text_color(0, 0, 0)
            pdf.set_font("cjk", size=10)
            pdf.multi_cell(0, 5.5, value, new_x="LMARGIN", new_y="NEXT")
    if atlas["items"]:
        pdf.add_page()
    pdf.start_section("按县区索引 / index by county")
    pdf.set_font("cjk", size=16)
    pdf.cell(0, 10, "按县区索引 / index by county", new_x="LMARGIN", new_y="NEXT")
    for county, items in atlas["counties"].items():
        pdf.set_font("cjk", size=12)
        pdf.cell(0, 8, county, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=10)
        pdf.multi_cell(0, 6, "、".join(f"{i['name']}（第 {pages[i['id']]} 页）" for i in items),
                       new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


__all__ = ["TITLE", "atlas_html", "atlas_pdf", "build_atlas"]
