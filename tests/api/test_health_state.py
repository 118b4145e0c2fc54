"""`/healthz`'s answer is the read pool's health state (registry/serving/pool.py `ReadPool.state`):
current for a prober that asks now and then, and never a false alarm for a burst of questions after
a worker served only scans for a while."""
from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from sqlalchemy.engine import make_url

import registry.serving.pool as pool_module
from registry.serving.pool import HEALTH_EVERY_SECONDS, NO_ANSWER_SECONDS, STALE_SECONDS, ReadPool

_IDLE_SECONDS = 30.0  # nobody asked for the worker's health this long (a load balancer's 10 s and more)


def _later(monkeypatch, seconds: float) -> None:
    """The pool's clock `seconds` ahead (an idle spell, without sleeping through it)."""
    real = time.monotonic
    monkeypatch.setattr(pool_module, "time", SimpleNamespace(monotonic=lambda: real() + seconds))


def test_should_report_the_database_up_to_a_burst_of_health_checks_after_an_idle_spell(database_url, monkeypatch):
    assert _IDLE_SECONDS > NO_ANSWER_SECONDS > STALE_SECONDS >= HEALTH_EVERY_SECONDS

    async def burst():
        async with ReadPool([database_url], min_size=1, max_size=1) as pool:
            first = await pool.state()
            _later(monkeypatch, _IDLE_SECONDS)
            # one turn of the loop: the first question starts the refresh, the others find it running
            return first, await asyncio.gather(*(pool.state() for _ in range(32)))

    first, answers = asyncio.run(burst())
    assert first[-1].up is True
    assert [a[-1].up for a in answers] == [True] * 32


def test_should_tell_a_prober_that_asks_now_and_then_what_holds_now(database_url, monkeypatch):
    async def probes():
        async with ReadPool([database_url], min_size=1, max_size=1) as pool:
            await pool.state()
            _later(monkeypatch, _IDLE_SECONDS)
            return (await pool.state())[-1].age_ms()

    assert asyncio.run(probes()) < STALE_SECONDS * 1000  # not the 30 s old state of the last probe


async def _proxy(host: str, port: int):
    """A TCP proxy to the database that can be cut: (its port, cut())."""
    links: list[asyncio.StreamWriter] = []

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def serve(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection(host, port)
        links.extend((client_writer, server_writer))
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)

    def cut() -> None:
        server.close()
        for w in links:
            w.transport.abort()

    return server.sockets[0].getsockname()[1], cut


def test_should_tell_a_prober_that_asks_now_and_then_that_the_database_went_away(database_url, monkeypatch):
    url = make_url(database_url)

    async def probes():
        port, cut = await _proxy(url.host, url.port)
        async with ReadPool([url.set(port=port).render_as_string(hide_password=False)], min_size=1, max_size=1,
                            connect_timeout=1) as pool:
            before = (await pool.state())[-1]
            cut()  # the server is gone, and nothing asked the pool since
            _later(monkeypatch, _IDLE_SECONDS)
            return before, (await pool.state())[-1]

    before, after = asyncio.run(probes())
    assert before.up is True
    assert after.up is False and after.age_ms() < STALE_SECONDS * 1000
