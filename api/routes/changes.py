from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import DbConn, scope
from registry.changes import get_change_set

router = APIRouter(prefix="/v1", tags=["change sets"])


@router.get("/change-sets/{change_set_id}", summary="A change set (scope: editor)", dependencies=[scope("editor")])
def change_set(conn: DbConn, change_set_id: Annotated[int, Path(ge=1)]) -> dict:
    cs = get_change_set(conn, change_set_id)
    return {"id": cs.id, "kind": cs.kind, "status": cs.status, "author": cs.author, "source": cs.source,
            "counts": cs.counts}
