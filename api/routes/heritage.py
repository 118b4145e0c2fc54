"""The place-name cultural heritage catalogue (地名文化遗产保护名录) and its atlas page."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response

from api.deps import ReadConn
from registry.heritage import get_item, list_items

router = APIRouter(tags=["heritage"])


@router.get("/v1/heritage", summary="Heritage items by level, category and division (synthetic items are marked)")
def items(
    conn: ReadConn,
    level: Annotated[str | None, Query(description="national, province, city, county or candidate (or 省级 …)")] = None,
    category: Annotated[str | None, Query(description="千年古镇, 千年古村落, 古街巷, 古地名 …")] = None,
    division: Annotated[str | None, Query(description="a division code (either authority): items within it")] = None,
    real_only: Annotated[bool, Query(description="leave out synthetic items")] = False,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
) -> dict:
    return {"results": list_items(conn, level=level, category=category, division=division,
                                  include_synthetic=not real_only, limit=limit)}


@router.get("/v1/heritage/{item_id}", summary="One heritage item: listing, origin, source, certainty, history")
def item(conn: ReadConn, item_id: Annotated[int, Path(description="the item's stable id")]) -> dict:
    return get_item(conn, item_id)


@router.get("/heritage/atlas", response_class=HTMLResponse, summary="The heritage atlas as an HTML page")
def atlas_page(conn: ReadConn, division: str | None = None, real_only: bool = False) -> HTMLResponse:
    from registry.heritage_atlas import atlas_html, build_atlas

    return HTMLResponse(atlas_html(build_atlas(conn, division=division, include_synthetic=not real_only)))


@router.get("/heritage/atlas.pdf", summary="The heritage atlas as a PDF")
def atlas_pdf_file(conn: ReadConn, division: str | None = None, real_only: bool = False) -> Response:
    from registry.heritage_atlas import atlas_pdf, build_atlas

    pdf = atlas_pdf(build_atlas(conn, division=division, include_synthetic=not real_only))
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": 'inline; filename="heritage_atlas.pdf"'})
