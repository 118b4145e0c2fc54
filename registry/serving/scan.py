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

The slim reads of the scans that reach it in one turn of the event loop share one statement
(`PlateReads`): under load, dozens of misses are in flight at once, and one statement for eight
plates costs the worker and PostgreSQL about a quarter of what eight statements do (the driver's
round trip and the server's per-statement work, not the index lookups, were most of a miss's read).
Nothing waits for a batch to fill: the read goes out on the loop's next turn with whatever came.
"""
from __future__ import annotations

import asyncio
import copy
from typing import Any

from registry.doorplates.view import SCAN_SQL, SLIM_FIELD_NAMES, SLIM_SELECT
from registry.doorplates.view import scan_row as _row_of

# One prepared statement per arity (ids padded with the last one up to it): a fixed list of scalar
# parameters gets PostgreSQL's generic plan like the one-plate statement; an `= ANY(array)` does not
# (its custom plans, made again on each execution, cost more than they save).
ARITIES = (1, 2, 4, 8, 16, 32)
assert SLIM_FIELD_NAMES[0] == "id", "view.SLIM_SELECT gives the plate id first"
_SLIM_FOR = {k: SLIM_SELECT + "WHERE p.id IN (" + ", ".join(["%s"] * k) + ")" for k in ARITIES}


def _arity(n: int) -> int:
    return next(k for k in ARITIES if k >= n)


class PlateReads:
    """The slim rows of the plates asked for in one turn of the event loop, read by one statement.

    `row(plate_id)` gives the SLIM_SQL row (its one JSON array, decoded) or None when no such
    plate exists; a failed read (DatabaseUnavailable after the pool's failover) is raised to each
    of its callers. A caller that goes away (cancelled) leaves the others' read running."""

    def __init__(self, pool) -> None:
        self.pool = pool
        self._asked: dict[int, list[asyncio.Future]] = {}
        self._reading: set[asyncio.Task] = set()
        self.statements = self.plates = 0  # what was read, for the benches

    async def row(self, plate_id: int) -> list[Any] | None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._asked:
            loop.call_soon(self._send)  # after the callbacks already due in this turn: their plates join
        self._asked.setdefault(plate_id, []).append(future)
        return await future

    def _send(self) -> None:
        asked, self._asked = self._asked, {}
        ids = list(asked)
        for start in range(0, len(ids), ARITIES[-1]):
            chunk = ids[start:start + ARITIES[-1]]
            task = asyncio.get_running_loop().create_task(self._read(chunk, asked))
            self._reading.add(task)  # held until done (the loop keeps only a weak reference)
            task.add_done_callback(self._reading.discard)

    async def _read(self, ids: list[int], asked: dict[int, list[asyncio.Future]]) -> None:
        k = _arity(len(ids))
        try:
            rows = await self.pool.fetchall(_SLIM_FOR[k], tuple(ids + ids[-1:] * (k - len(ids))), primary=True)
        except BaseException as exc:  # noqa: BLE001 - each caller gets it (cancelled: the loop is closing)
            for plate_id in ids:
                for future in asked[plate_id]:
                    if not future.done():
                        future.set_exception(copy.copy(exc))  # its own traceback per caller
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self.statements += 1
        self.plates += len(ids)
        found = {r[0][0]: r[0] for r in rows}  # the plate id is the array's first field
        for plate_id in ids:
            for future in asked[plate_id]:
                if not future.done():
                    future.set_result(found.get(plate_id))


async def scan_row(path, plate_id: int) -> dict[str, Any] | None:
    """`path` is the app's ReadPath. On the primary: the render cache and the reference data follow
    the primary's notifications."""
    reference = path.reference
    if reference.ready:
        found = await path.plate_reads.row(plate_id)
        if found is None:
            return None
        row = reference.row(found)  # checked again: the data may have been dropped meanwhile
        if row is not None:
            return row
    else:
        reference.load()
    return _row_of(await path.pool.fetchone(SCAN_SQL, (plate_id,), primary=True))
