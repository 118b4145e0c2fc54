"""Scan counts per plate and day (Asia/Shanghai), without anything about who scanned.

The scan path must stay fast, so counts are kept in memory and written in batches: `hit()` is a dict
increment under a lock; a background thread (or `flush(conn)`) adds the counts to `doorplate_scans`
with one set-based UPSERT. A crash loses at most `interval` seconds of counts — statistics, not
records. With `interval=0` every hit is written at once through the request's own connection
(the tests use this; it is also the simple mode for a deployment that prefers exactness).
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)
TZ = ZoneInfo("Asia/Shanghai")

# In the driver's placeholders: run through SQLAlchemy (`exec_driver_sql`) and the async read pool
# alike. One day a statement, the plates and counts as array literals in text: the driver's own
# list and date adaptation (per element, in Python) held the GIL ~25 ms for 4,000 plates, a stall
# of the event loop every flush; joining ints into a literal is ~20 times cheaper.
UPSERT_SQL = """
    INSERT INTO doorplate_scans (plate_id, day, count)
    SELECT p, CAST(CAST(%s AS text) AS date), n
    FROM unnest(CAST(CAST(%s AS text) AS bigint[]), CAST(CAST(%s AS text) AS int[])) AS t(p, n)
    ON CONFLICT (plate_id, day) DO UPDATE SET count = doorplate_scans.count + EXCLUDED.count
"""


def today() -> date:
    return datetime.now(TZ).date()


def add_counts(conn: Connection, counts: dict[tuple[int, date], int]) -> None:
    for params in upsert_params(counts):
        conn.exec_driver_sql(UPSERT_SQL, params)


def _array(values) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def upsert_params(counts: dict[tuple[int, date], int]) -> list[tuple[str, str, str]]:
    """UPSERT_SQL's parameters, one statement a day: (day, plates, counts) in text."""
    by_day: dict[date, list[int]] = {}
    for plate, day in counts:
        by_day.setdefault(day, []).append(plate)
    out = []
    for day in sorted(by_day):  # a stable order (days, then plates), so concurrent flushes cannot deadlock
        plates = sorted(by_day[day])
        out.append((day.isoformat(), _array(plates), _array(counts[(p, day)] for p in plates)))
    return out


class ScanCounter:
    def __init__(self, interval: float = 2.0, engine: Engine | None = None) -> None:
        self.interval = interval
        self.engine = engine
        self._counts: Counter[tuple[int, date]] = Counter()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def buffered(self) -> bool:
        return self.interval > 0

    def hit(self, plate_id: int, conn: Connection | None = None) -> None:
        key = (plate_id, today())
        if not self.buffered:
            if conn is not None:
                add_counts(conn, {key: 1})
            return
        with self._lock:
            self._counts[key] += 1
        if self._thread is None and self.engine is not None:
            self._start()

    def pending(self) -> dict[tuple[int, date], int]:
        with self._lock:
            return dict(self._counts)

    def _take(self) -> dict[tuple[int, date], int]:
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
        return counts

    def flush(self, conn: Connection | None = None) -> int:
        """Write the buffered counts (through `conn`, else a connection of `engine`); returns plates written."""
        counts = self._take()
        if not counts:
            return 0
        try:
            if conn is not None:
                add_counts(conn, counts)
            elif self.engine is not None:
                with self.engine.begin() as c:
                    add_counts(c, counts)
            else:
                raise RuntimeError("no connection to flush scan counts to")
        except Exception:
            with self._lock:  # keep them for the next try
                self._counts.update(counts)
            raise
        return len(counts)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="doorplate-scan-flusher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # the database may be restarting: counts stay buffered
                log.warning("could not write doorplate scan counts; will retry", exc_info=True)

    def close(self) -> None:
        """Stop the flusher and write what is buffered (the API's lifespan calls it on shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()
        except Exception:
            log.warning("doorplate scan counts lost at shutdown", exc_info=True)


def scan_counts(conn: Connection, plate_id: int, days: int = 30) -> dict[str, Any]:
    rows = conn.execute(text("""
        SELECT day, count FROM doorplate_scans
        WHERE plate_id = :id AND day > CAST(:today AS date) - CAST(:days AS int)
        ORDER BY day
    """), {"id": plate_id, "today": today(), "days": days}).all()
    total = conn.execute(text("SELECT coalesce(sum(count), 0) FROM doorplate_scans WHERE plate_id = :id"),
                         {"id": plate_id}).scalar_one()
    return {"total": int(total), "days": [{"day": r.day.isoformat(), "count": r.count} for r in rows]}
