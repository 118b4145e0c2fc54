"""The scans' plate reads that share one statement (registry/serving/scan.py `PlateReads`): each caller
gets its own plate's row, as the one-plate statement reads it, whatever the batch it went with."""
from __future__ import annotations

import asyncio
import socket

import pytest

from registry.doorplates.view import SLIM_SQL
from registry.errors import DatabaseUnavailable
from registry.serving.pool import ReadPool
from registry.serving.scan import ARITIES, PlateReads


@pytest.fixture()
def conn(committed_conn):
    return committed_conn


def test_should_give_each_scan_its_own_plate_when_many_are_read_together(conn, committed_engine, make_address,
                                                                       plate_for):
    plates = [plate_for(make_address(number=f"{n}号"))[0] for n in range(1, ARITIES[-1] + 6)]
    conn.commit()  # the read pool's connections see it
    missing = max(plates) + 1_000_000
    asked = [*plates, plates[3], missing]  # one plate asked twice, one that does not exist
    expected = {pid: conn.exec_driver_sql(SLIM_SQL, (pid,)).one()[0] for pid in plates}
    expected[missing] = None

    async def scans():
        async with ReadPool([committed_engine.url.render_as_string(hide_password=False)], max_size=2) as pool:
            reads = PlateReads(pool)
            got = await asyncio.gather(*(reads.row(pid) for pid in asked))
            alone = await reads.row(plates[0])  # a later turn of the loop: a statement of its own
            return got, alone, reads.statements, reads.plates

    got, alone, statements, read = asyncio.run(scans())
    assert got == [expected[pid] for pid in asked]
    assert alone == expected[plates[0]]
    # 38 distinct plates in one turn: two statements (32, then 6 padded to 8), then the lone one
    assert (statements, read) == (3, len(plates) + 2)


def test_should_tell_every_waiting_scan_that_the_database_is_down():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]

    async def scans():
        async with ReadPool([f"postgresql://registry@127.0.0.1:{free_port}/none"], max_size=1,
                            connect_timeout=1) as pool:
            reads = PlateReads(pool)
            return await asyncio.gather(*(reads.row(pid) for pid in (1, 2, 3)), return_exceptions=True)

    errors = asyncio.run(scans())
    assert all(isinstance(e, DatabaseUnavailable) for e in errors), errors
    assert len({id(e) for e in errors}) == 3  # each caller raises its own (tracebacks do not pile up)
