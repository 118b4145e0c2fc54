from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from api.deps import CurrentKey, ReadConn, scope
from registry.as_of import address_as_of, parse_as_of
from registry.addresses import Page, address_history, address_views, as_feature, get_address, list_addresses
from registry.divisions import AUTHORITY_HELP, match_code

router = APIRouter(prefix="/v1", tags=["addresses"])


@router.get("/addresses/{address_id}", summary="An address by its stable identifier (an agency key sees the "
            "full record: version, change set, source, history link, plates)")
def address(conn: ReadConn, key: CurrentKey, address_id: Annotated[int, Path(description="stable identifier")],
            as_of: Annotated[str | None, Query(description="YYYY-MM-DD: the address as in force on that day")] = None,
            ) -> dict:
    day = parse_as_of(as_of)
    if day is not None:
        return address_as_of(conn, address_id, day)
    return as_feature(address_views(conn, [get_address(conn, address_id)], agency=key.allows("agency"))[0])


@router.get("/addresses", summary="Addresses in a division and below, as GeoJSON, a page at a time (the public: "
            "active ones only, pages of at most 100 by `after`; an agency key: every status, a total, offset too)")
def addresses(
    request: Request,
    conn: ReadConn,
    key: CurrentKey,
    division: Annotated[str, Query(description="division code (either authority)")],
    limit: Annotated[int, Query(description="page size, 1–100 (public) or 1–1000 (agency)")] = 100,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="the last id of the previous page "
                                       "(keyset paging: follow the `next` link)")] = None,
    offset: Annotated[int, Query(description="rows to skip (agency keys only; the public pages by `after`)")] = 0,
    status: Annotated[str | None, Query(description="planned, active or retired (other than active: agency)")] = None,
    authority: Annotated[str | None, Query(description=AUTHORITY_HELP)] = None,
) -> JSONResponse:
    page = Page.of(limit, offset)
    resolved = match_code(conn, division, authority=authority, parameter="division")
    agency = key.allows("agency")
    listing = list_addresses(conn, division, page, status=status, authority=authority, after=after, agency=agency)
    body = {
        "type": "FeatureCollection",
        "division": resolved.as_dict(),  # the division the code was read as, by name
        "numberReturned": len(listing.records),
        "features": [as_feature(r) for r in address_views(conn, listing.records, agency=agency)],
        "links": [],
    }
    if listing.total is not None:
        body["numberMatched"] = listing.total
    if listing.next_after is not None:
        params = {k: v for k, v in request.query_params.items() if k not in ("after", "offset")}
        href = str(request.url.replace_query_params(**params, after=listing.next_after))
        body["next"] = href
        body["links"].append({"rel": "next", "href": href, "type": "application/geo+json"})
    return JSONResponse(body, media_type="application/geo+json")


@router.get("/addresses/{address_id}/history", summary="Every version of an address (scope: agency)",
            dependencies=[scope("agency")])
def history(conn: ReadConn, address_id: Annotated[int, Path(description="stable identifier")]) -> dict:
    return {"id": address_id, "versions": address_history(conn, address_id)}
