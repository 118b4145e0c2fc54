"""Route: the change feed (`GET /v1/changes?since=`), scope agency.

Applied change sets in the order they were applied, each with the entities it touched (created,
modified, retired, merged, split, moved); paged by entities, with a `next` link that carries
`since` or `cursor`. The rules live in registry/feed.py. Agency scope, because a change set names
its author and reason; the entities themselves are those the public collections show.
"""
from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import DbConn, scope
from registry.feed import DEFAULT_LIMIT, MAX_LIMIT, changes

router = APIRouter(prefix="/v1", tags=["change feed"])


@router.get("/changes", summary="Applied change sets and the entities they touched (scope: agency)",
            dependencies=[scope("agency")])
def change_feed(
    request: Request,
    conn: DbConn,
    since: Annotated[str | None, Query(description="a change set id, or an ISO time: what was applied after it",
                                       max_length=40)] = None,
    cursor: Annotated[str | None, Query(description="where the previous page stopped (from its next link)",
                                        pattern=r"^\d+:\d+:\d+$", max_length=64)] = None,
    limit: Annotated[int, Query(description=f"entities per page, 1–{MAX_LIMIT}", ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    page = changes(conn, since=since, cursor=cursor, limit=limit)
    nxt = page.pop("next")
    page["links"] = [{"rel": "self", "href": str(request.url), "type": "application/json"}]
    page["next"] = None
    if nxt is not None:
        url = request.url.remove_query_params(["since", "cursor"]).include_query_params(limit=limit, **nxt)
        page["next"] = str(url)
        page["links"].append({"rel": "next", "href": str(url), "type": "application/json"})
    # orjson: a page of 10,000 entities through FastAPI's jsonable_encoder costs more than the queries
    return Response(orjson.dumps(page), media_type="application/json")
