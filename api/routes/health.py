from fastapi import APIRouter
from sqlalchemy import text

from api.deps import DbConn

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness and database check")
def healthz(conn: DbConn) -> dict:
    conn.execute(text("SELECT 1"))
    return {"status": "ok", "database": "ok"}
