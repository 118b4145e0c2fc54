"""The row a public scan is composed from, read on the async read path.

`scan_row(path, plate_id)` gives the row of `registry.doorplates.view.SCAN_SQL` by field name
(`view.FIELD_NAMES`), or None when the plate does not exist. The API's scan (the FastAPI route and
the hot-path front, api/front.py) reads it here and nowhere else.

While the path's reference data (`registry.serving.reference`: divisions, place names, facilities
held in process and kept by the notifications) is ready, only the plate and its address are read
(`view.SLIM_SQL`) and the rest is completed in process; otherwise, or when the reference data lacks
a row the scan needs (or cannot settle its nearest facilities alone), the full SCAN_SQL answers.
The one difference of the completed row: `versions` is None for an address with a single version
(SCAN_SQL gives that one version; `registry.as_of.printed_among` reads both as "no printed text").
"""
from __future__ import annotations

from typing import Any

from registry.doorplates.view import SCAN_SQL, SLIM_SQL
from registry.doorplates.view import scan_row as _row_of


async def scan_row(path, plate_id: int) -> dict[str, Any] | None:
    """On the primary: the render cache and the reference data follow the primary's notifications."""
    reference = getattr(path, "reference", None)
    if reference is not None and reference.ready:
        found = await path.pool.fetchone(SLIM_SQL, (plate_id,), primary=True)
        if found is None:
            return None
        row = reference.row(found[0])  # checked again: the data may have been dropped meanwhile
        if row is not None:
            return row
    elif reference is not None:
        reference.load()
    return _row_of(await path.pool.fetchone(SCAN_SQL, (plate_id,), primary=True))
