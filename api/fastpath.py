"""Which requests take the fast read path (registry/serving: the async pool and the render cache)."""
from __future__ import annotations

from fastapi import Request

from api.deps import get_conn
from registry.serving import ReadPath


async def read_path(request: Request) -> ReadPath | None:
    """The app's async read path, opened on first use; None when the lifespan did not run or a test
    overrides the request's connection (its rows are uncommitted: only that connection sees them)."""
    return await read_path_of(request.app)


async def read_path_of(app) -> ReadPath | None:
    """`read_path` for the app itself (the hot-path front has no Request)."""
    path = getattr(app.state, "read_path", None)
    if path is None or get_conn in app.dependency_overrides:
        return None
    return await path.ensure()
