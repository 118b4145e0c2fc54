"""The round's report after an applied package: the displaced marker, the line with its area
change, markers by condition, as CSV, HTML with a server-drawn SVG map, and PDF."""
from __future__ import annotations

import pytest

from registry.changes import apply_reviewed, approve
from registry.inspection.report import build_report, report_csv, report_html, report_pdf

from .conftest import ROUND, township_line
from .helpers import edited_package, propose


@pytest.fixture()
def applied(cconn, tmp_path):
    line = township_line(cconn)
    path, _, _, markers = edited_package(cconn, line, tmp_path)
    cs = propose(cconn, path).change_set_id
    approve(cconn, cs, actor="editor-b")
    apply_reviewed(cconn, cs, actor="editor-c")
    return {"line": line, "number": markers["number"][0], "cs": cs}


def test_should_report_the_displaced_marker_and_the_line_whose_area_changed(cconn, applied):
    rep = build_report(cconn, ROUND)
    assert [d["number"] for d in rep["displaced"]] == [applied["number"]]
    assert rep["displaced"][0]["moved_m"] == pytest.approx(30, abs=0.5)
    assert [a["code"] for a in rep["area_changes"]] == [applied["line"]["code"]]
    (line,) = [row for row in rep["lines"] if row["code"] == applied["line"]["code"]]
    assert line["displaced"] == 1
    assert applied["number"] in [f["number"] for f in rep["open_findings"]]


def test_should_draw_the_map_from_the_registry_geometries_without_external_tiles(cconn, applied):
    page = report_html(build_report(cconn, ROUND))
    assert "<svg" in page and "<path d=\"M" in page and applied["number"] in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page


def test_should_write_csv_and_pdf(cconn, applied):
    rep = build_report(cconn, ROUND)
    body = report_csv(rep)
    assert "displaced" in body and applied["number"] in body
    pdf = report_pdf(rep)
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000


def test_should_serve_the_report_to_editors(cclient, editor_key, agency_key, applied):
    h = {"X-API-Key": editor_key}
    r = cclient.get(f"/v1/inspections/{ROUND}/report", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html") and "<svg" in r.text
    assert cclient.get(f"/v1/inspections/{ROUND}/report?format=csv", headers=h).status_code == 200
    assert cclient.get(f"/v1/inspections/{ROUND}/report", headers={"X-API-Key": agency_key}).status_code == 403
