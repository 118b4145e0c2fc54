from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import ReadConn
from registry.adjustment_history import adjustment_context
from registry.as_of import division_as_of, parse_as_of
from registry.divisions import AUTHORITY_HELP, get_division

router = APIRouter(prefix="/v1", tags=["divisions"])


@router.get("/divisions/{code}", summary="A division by its NBS 2023 or MCA 2025 code")
def division(
    conn: ReadConn,
    code: Annotated[str, Path(description="6-, 9- or 12-digit code under either authority")],
    geometry: Annotated[bool, Query(description="include the polygon as GeoJSON")] = False,
    authority: Annotated[str | None, Query(description=AUTHORITY_HELP)] = None,
    as_of: Annotated[str | None, Query(description="YYYY-MM-DD: the division as in force on that day "
                                                   "(from the versioned rows)")] = None,
) -> dict:
    day = parse_as_of(as_of)
    if day is not None:
        return division_as_of(conn, code, day, authority=authority)
    body = get_division(conn, code, with_geometry=geometry, authority=authority).as_dict()
    # An old code answers with the division it belongs to now, its successors and the change.
    body.update(adjustment_context(conn, code, body["id"], body["status"]))
    return body
