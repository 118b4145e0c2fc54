"""`/healthz`'s answer is the read pool's health state (registry/serving/pool.py `ReadPool.state`):
a worker that served only scans for a while, then gets a burst of health checks, must still call a
database that answers up."""
from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import registry.serving.pool as pool_module
from registry.serving.pool import HEALTH_EVERY_SECONDS, NO_ANSWER_SECONDS, ReadPool

_IDLE_SECONDS = 30.0  # a worker busy with scans: nobody asked for its health this long


def test_should_report_the_database_up_to_a_burst_of_health_checks_after_an_idle_spell(database_url, monkeypatch):
    assert _IDLE_SECONDS > NO_ANSWER_SECONDS > HEALTH_EVERY_SECONDS

    async def burst():
        async with ReadPool([database_url], min_size=1, max_size=1) as pool:
            first = await pool.state()
            real = time.monotonic
            monkeypatch.setattr(pool_module, "time", SimpleNamespace(monotonic=lambda: real() + _IDLE_SECONDS))
            # one turn of the loop: the first request starts the refresh, the others find it running
            answers = await asyncio.gather(*(pool.state() for _ in range(32)))
            await pool._refresh  # the refresh itself comes back with the database up
            return first, answers, await pool.state()

    first, answers, after = asyncio.run(burst())
    assert first[-1].up is True
    assert [a[-1].up for a in answers] == [True] * 32
    assert after[-1].up is True and after[-1].age_ms() < NO_ANSWER_SECONDS * 1000
