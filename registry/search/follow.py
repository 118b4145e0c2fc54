"""Keeping the gazetteer fresh where NOTIFY does not arrive: on a streaming replica.

The search triggers write every payload they NOTIFY to `search_changes` as well (migration
0013), with the id of the transaction that wrote it (`xid`). A follower polls that table every
FOLLOW_SECONDS on whichever node the reads go to, under one REPEATABLE READ snapshot:

- it takes the rows whose transaction may not have been visible at its previous poll, i.e.
  `xid >= xmin` of the previous poll's snapshot (every transaction below that xmin had ended
  then, so its rows were read then or earlier), and drops the ones it has already applied;
- it remembers this snapshot's xmin for the next poll, and forgets the applied ids whose xid is
  below it (they cannot come back).

So a change is applied once its commit is visible on the node read, in commit order or not,
and a switch of node (a replica down, reads on another replica or the primary) loses nothing
and needs no reload. Applying a payload twice is harmless (the changed rows are read again).
"""
from __future__ import annotations

import logging
import time

from sqlalchemy import Connection, text

log = logging.getLogger(__name__)

FOLLOW_SECONDS = 0.5  # how often the replica's change log is polled: a change is searchable within ~2 polls

_SNAPSHOT = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
# What a reset finds visible is in the load that follows it, whatever its `xid` says: rows restored
# from another cluster's dump (`registry restore`) carry that cluster's xids, which this cluster's
# may be below (read as new on every start, without this) or reach later (read as new then).
_VISIBLE = text("SELECT id, xid::text::bigint FROM search_changes WHERE xid >= CAST(CAST(:xmin AS text) AS xid8)")
# A row visible in a snapshot was written below its xmax: the bound only spares the polls the
# restored rows whose xids this cluster has not reached (the reset marked them applied).
_SINCE = text("SELECT id, xid::text::bigint, payload FROM search_changes "
              "WHERE xid >= CAST(CAST(:xmin AS text) AS xid8) "
              "AND xid < pg_snapshot_xmax(pg_current_snapshot()) ORDER BY id")


class ChangeFollower:
    """The follower's state: the previous snapshot's xmin and the ids applied since."""

    def __init__(self) -> None:
        self.xmin: int | None = None
        self.applied: dict[int, int] = {}  # search_changes.id -> xid

    def reset(self, conn: Connection) -> None:
        """Before a full load: what is visible now counts as applied (the load reads it), everything
        committed after this is followed (possibly twice)."""
        self.xmin = int(conn.execute(_SNAPSHOT).scalar())
        self.applied = {cid: xid for cid, xid in conn.execute(_VISIBLE, {"xmin": self.xmin})}
        conn.rollback()

    def poll(self, conn: Connection) -> list[str]:
        """The payloads of the changes committed (and visible on this node) since the last poll."""
        if self.xmin is None:
            raise RuntimeError("ChangeFollower.poll before reset")
        conn.rollback()
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")  # one snapshot
        try:
            xmin = int(conn.execute(_SNAPSHOT).scalar())
            rows = conn.execute(_SINCE, {"xmin": min(self.xmin, xmin)}).all()
        finally:
            conn.rollback()
        payloads = []
        for cid, xid, payload in rows:
            if cid not in self.applied:
                self.applied[cid] = xid
                payloads.append(payload)
        self.xmin = xmin  # every row of a transaction below it has just been read (or was before)
        self.applied = {cid: xid for cid, xid in self.applied.items() if xid >= self.xmin}
        return payloads


def run_following(service) -> None:
    """SearchService's thread when its reads go to replicas (`service.follow` gives the engine
    to read, routing/read_engine): load, then poll the change log and apply, until stopped."""
    from registry.search.freshness import apply_changes, parse_payloads

    follower = ChangeFollower()
    loaded = False
    while not service._stop.is_set():
        try:
            engine = service.follow()
            if engine is not service.engine:
                log.info("search follows %s", engine.url.render_as_string(hide_password=True))
                service.engine = engine
                shared = getattr(service, "shared", None)
                if shared is not None and hasattr(shared, "engine"):
                    shared.engine = engine
            if not loaded:
                with engine.connect() as conn:
                    follower.reset(conn)
                service._reload()
                loaded = True
            with engine.connect() as conn:
                payloads = follower.poll(conn)
                if payloads:
                    changes, reload = parse_payloads(payloads)
                    if reload:
                        service._reload()
                    elif changes and service._gaz is not None:
                        apply_changes(service._gaz, conn, changes)
                        conn.rollback()
                    service.last_change_at = time.time()
            service.error = None
        except Exception as exc:  # the node went away: the next poll reads another (nothing is lost)
            service.error = exc
            log.warning("search change follower: %s; retrying", exc)
            service._stop.wait(1.0)
            continue
        service._stop.wait(FOLLOW_SECONDS)
