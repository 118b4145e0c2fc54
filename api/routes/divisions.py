from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import DbConn
from registry.divisions import AUTHORITY_HELP, get_division

router = APIRouter(prefix="/v1", tags=["divisions"])


@router.get("/divisions/{code}", summary="A division by its NBS 2023 or MCA 2025 code")
def division(
    conn: DbConn,
    code: Annotated[str, Path(description="6-, 9- or 12-digit code under either authority")],
    geometry: Annotated[bool, Query(description="include the polygon as GeoJSON")] = False,
    authority: Annotated[str | None, Query(description=AUTHORITY_HELP)] = None,
) -> dict:
    return get_division(conn, code, with_geometry=geometry, authority=authority).as_dict()
