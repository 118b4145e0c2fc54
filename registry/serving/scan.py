"""The row a public scan is composed from, read on the async read path.

`scan_row(path, plate_id)` gives the same dict as `registry.doorplates.view.scan_row` of SCAN_SQL
(the field names of `view.FIELD_NAMES`), or None when the plate does not exist. The API's scan (the
FastAPI route and the hot-path front, api/front.py) reads it here and nowhere else.
"""
from __future__ import annotations

from typing import Any

from registry.doorplates.view import SCAN_SQL
from registry.doorplates.view import scan_row as _row_of


async def scan_row(path, plate_id: int) -> dict[str, Any] | None:
    """On the primary: the render cache follows the primary's notifications."""
    return _row_of(await path.pool.fetchone(SCAN_SQL, (plate_id,), primary=True))
