"""`/healthz`: the process is up, and the primary database answered within the last second.

The answer is the read pool's health state (refreshed in the background at most once a second),
with its age: no round trip of its own under load, yet a database that went down is reported as
such (503 `database-unavailable`) within about a second; a state older than 2 s (a prober that asks
every 10 s) is checked again before it is answered (registry/serving/pool.py `ReadPool.state`).
A test app on a connection of its own (an overridden `get_conn`) checks that connection instead.
"""
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import text

from api.fastpath import read_path
from registry.errors import DatabaseUnavailable

router = APIRouter(tags=["health"])

_OK = b'{"status":"ok","database":"ok"'


@router.get("/healthz", summary="Liveness and database check (the primary's state, at most a second old)",
            response_class=Response)
async def healthz(request: Request) -> Response:
    path = await read_path(request)
    if path is None:
        await run_in_threadpool(_check_connection, request)
        return Response(_OK + b"}", media_type="application/json")
    answer = await pool_health(path)
    if answer is None:
        raise DatabaseUnavailable("数据库不可用 / the database is unavailable",
                                  checked_ms_ago=(await path.pool.state())[-1].age_ms())
    return answer


async def pool_health(path) -> Response | None:
    """The answer while the primary is up, from the read pool's health state; None when it is down
    (the route raises the 503). Called by the route and by the hot-path front (api/front.py)."""
    health = (await path.pool.state())[-1]
    if not health.up:
        return None
    return Response(_OK + b',"checked_ms_ago":%d}' % health.age_ms(), media_type="application/json")


def _check_connection(request: Request) -> None:
    from api.deps import _request_connection

    with _request_connection(request) as conn:
        conn.execute(text("SELECT 1"))
