"""The change log a replica-backed search follows (registry.search.follow): each change once, in
whatever order it commits, and nothing that this cluster did not write."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from registry.search.follow import ChangeFollower


@pytest.fixture()
def change_log(engine: Engine) -> Iterator[list[int]]:
    """Rows written to search_changes by the test (committed: the follower reads its own
    snapshots), deleted at the end."""
    ids: list[int] = []
    yield ids
    with engine.begin() as c:
        c.execute(text("DELETE FROM search_changes WHERE id = ANY(:ids)"), {"ids": ids})


def _write(engine: Engine, ids: list[int], payload: str, xid: int | None = None) -> None:
    with engine.begin() as c:
        if xid is None:
            row = c.execute(text("INSERT INTO search_changes (payload) VALUES (:p) RETURNING id"), {"p": payload})
        else:
            row = c.execute(text("INSERT INTO search_changes (xid, payload) VALUES "
                                 "(CAST(CAST(:x AS text) AS xid8), :p) RETURNING id"), {"x": xid, "p": payload})
        ids.append(row.scalar_one())


def _poll(engine: Engine, follower: ChangeFollower) -> list[str]:
    with engine.connect() as c:
        return follower.poll(c)


def _started(engine: Engine) -> ChangeFollower:
    follower = ChangeFollower()
    with engine.connect() as c:
        follower.reset(c)
    return follower


def test_should_follow_a_change_committed_after_the_reset_once(engine, change_log):
    follower = _started(engine)
    _write(engine, change_log, "place_names:991001")
    assert "place_names:991001" in _poll(engine, follower)
    assert "place_names:991001" not in _poll(engine, follower)


def test_should_not_follow_what_was_committed_before_the_reset(engine, change_log):
    _write(engine, change_log, "place_names:991002")
    follower = _started(engine)
    assert "place_names:991002" not in _poll(engine, follower)


def _xid(engine: Engine) -> int:
    """A new transaction id of this cluster (each call takes one)."""
    with engine.begin() as c:
        return int(c.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one())


def test_should_not_follow_rows_restored_from_another_cluster(engine, change_log):
    """A dump restored into a new cluster brings the old cluster's xids: above this cluster's (it
    made every start load twice) and soon reached by it (then read as new). What the follower
    finds when it starts is in its load, whatever the xid says."""
    now = _xid(engine)
    _write(engine, change_log, "divisions:*", xid=now + 1_000_000)  # restored, far ahead
    _write(engine, change_log, "places:*", xid=now + 4)  # restored, reached in a moment
    follower = _started(engine)
    _write(engine, change_log, "place_names:991003")
    while _xid(engine) <= now + 4:
        pass
    payloads = _poll(engine, follower) + _poll(engine, follower)
    assert "place_names:991003" in payloads
    assert "divisions:*" not in payloads and "places:*" not in payloads
