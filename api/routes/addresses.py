from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api.deps import CurrentKey, DbConn, scope
from registry.as_of import address_as_of, parse_as_of
from registry.addresses import Page, address_history, address_views, as_feature, get_address, list_addresses
from registry.divisions import AUTHORITY_HELP, match_code

router = APIRouter(prefix="/v1", tags=["addresses"])


@router.get("/addresses/{address_id}", summary="An address by its stable identifier (an agency key sees the "
            "full record: version, change set, source, history link, plates)")
def address(conn: DbConn, key: CurrentKey, address_id: Annotated[int, Path(description="stable identifier")],
            as_of: Annotated[str | None, Query(description="YYYY-MM-DD: the address as in force on that day")] = None,
            ) -> dict:
    day = parse_as_of(as_of)
    if day is not None:
        return address_as_of(conn, address_id, day)
    return as_feature(address_views(conn, [get_address(conn, address_id)], agency=key.allows("agency"))[0])


@router.get("/addresses", summary="Addresses in a division and below, as GeoJSON")
def addresses(
    conn: DbConn,
    key: CurrentKey,
    division: Annotated[str, Query(description="division code (either authority)")],
    limit: Annotated[int, Query(description="page size, 1–1000")] = 100,
    offset: Annotated[int, Query(description="rows to skip")] = 0,
    status: Annotated[str | None, Query(description="planned, active or retired")] = None,
    authority: Annotated[str | None, Query(description=AUTHORITY_HELP)] = None,
) -> JSONResponse:
    page = Page.of(limit, offset)
    resolved = match_code(conn, division, authority=authority, parameter="division")
    records, total = list_addresses(conn, division, page, status=status, authority=authority)
    body = {
        "type": "FeatureCollection",
        "division": resolved.as_dict(),  # the division the code was read as, by name
        "numberMatched": total,
        "numberReturned": len(records),
        "features": [as_feature(r) for r in address_views(conn, records, agency=key.allows("agency"))],
    }
    return JSONResponse(body, media_type="application/geo+json")


@router.get("/addresses/{address_id}/history", summary="Every version of an address (scope: agency)",
            dependencies=[scope("agency")])
def history(conn: DbConn, address_id: Annotated[int, Path(description="stable identifier")]) -> dict:
    return {"id": address_id, "versions": address_history(conn, address_id)}
