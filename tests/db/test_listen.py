"""One LISTEN connection per process (registry.db.listen): each subscriber gets the payloads of its
channels, in order; a lost connection resets every subscriber and they listen again; an API
process holds exactly one such connection for the search, the tile cache and the read path."""
from __future__ import annotations

import asyncio
import threading
import time

import psycopg
import pytest
from fastapi.testclient import TestClient

from registry.db.listen import APPLICATION_NAME, Listener, libpq_url
from waiting import eventually


class Spy:
    """A subscriber that records what it is told."""

    def __init__(self) -> None:
        self.listening = False
        self.payloads: list[str] = []
        self.events: list[str] = []  # "reset", "live", "dead" in the order they happened
        self._live = False

    def apply(self, payload: str) -> None:
        assert self.listening, "a payload before the subscriber was marked listening"
        self.payloads.append(payload)

    def reset(self) -> None:
        self.events.append("reset")

    def __setattr__(self, name, value):
        if name == "listening" and hasattr(self, "events") and value != self.listening:
            self.events.append("live" if value else "dead")
        super().__setattr__(name, value)


def _eventually(check, seconds: float = 10.0):
    assert eventually(check, seconds), "condition not met in time"


def _notify(url: str, *pairs: tuple[str, str]) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as c:
        for channel, payload in pairs:
            c.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as c:
        c.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _listeners(url: str) -> list[int]:
    with psycopg.connect(libpq_url(url), autocommit=True) as c:
        return [r[0] for r in c.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
            (APPLICATION_NAME,))]


@pytest.fixture()
def event_loop_thread():
    """An event loop running in a thread, as the API's (a subscriber bound to it is called there)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_should_hand_each_subscriber_the_payloads_of_its_channels_in_order(database_url, event_loop_thread):
    listener = Listener(database_url)
    search, serving, both, in_loop = Spy(), Spy(), Spy(), Spy()
    try:
        listener.subscribe("t_search", search)
        listener.subscribe("t_serving", serving)
        listener.subscribe(("t_search", "t_serving"), both)
        listener.subscribe("t_serving", in_loop, loop=event_loop_thread)
        _eventually(lambda: all(s.listening for s in (search, serving, both, in_loop)))
        assert all(s.events == ["reset", "live"] for s in (search, serving, both, in_loop))
        assert _listeners(database_url) == [listener.backend_pid]  # one connection for all of them
        _notify(database_url, ("t_search", "addresses:1,2"), ("t_serving", "doorplates:7"),
                ("t_search", "divisions:*"), ("t_other", "nobody:1"))
        _eventually(lambda: len(both.payloads) == 3 and in_loop.payloads)
        assert search.payloads == ["addresses:1,2", "divisions:*"]
        assert serving.payloads == in_loop.payloads == ["doorplates:7"]
        assert both.payloads == ["addresses:1,2", "doorplates:7", "divisions:*"]
        listener.unsubscribe(search)
        assert not search.listening
        _notify(database_url, ("t_search", "addresses:3"))
        _eventually(lambda: len(both.payloads) == 4)
        assert search.payloads == ["addresses:1,2", "divisions:*"]
    finally:
        listener.stop()
    assert not both.listening and both.events[-2:] == ["dead", "reset"]
    assert _listeners(database_url) == []


def test_should_reset_every_subscriber_when_its_connection_is_lost_and_listen_again(database_url,
                                                                                    event_loop_thread):
    listener = Listener(database_url)
    plain, in_loop = Spy(), Spy()
    try:
        listener.subscribe("t_a", plain)
        listener.subscribe(("t_a", "t_b"), in_loop, loop=event_loop_thread)
        _eventually(lambda: plain.listening and in_loop.listening)
        first = listener.backend_pid
        _terminate(database_url, first)
        _eventually(lambda: listener.connections == 2 and plain.listening and in_loop.listening)
        for spy in (plain, in_loop):  # lost: not listening, reset; regained: reset, listening
            assert spy.events == ["reset", "live", "dead", "reset", "reset", "live"]
        assert listener.backend_pid != first and _listeners(database_url) == [listener.backend_pid]
        _notify(database_url, ("t_b", "doorplates:1"), ("t_a", "addresses:1"))
        _eventually(lambda: plain.payloads and len(in_loop.payloads) == 2)
        assert in_loop.payloads == ["doorplates:1", "addresses:1"]
    finally:
        listener.stop()


def test_should_retry_a_database_that_is_down_with_a_bounded_backoff(event_loop_thread):
    listener = Listener("postgresql://registry@127.0.0.1:8139/registry")  # nothing listens there
    spy = Spy()
    try:
        listener.subscribe("t_a", spy)
        _eventually(lambda: listener.error is not None, 5)
        assert not spy.listening and spy.events == []
    finally:
        started = time.monotonic()
        listener.stop()
        assert time.monotonic() - started < 1.0  # a stop does not wait for the backoff


def test_should_hold_one_listen_connection_per_api_process_for_every_consumer(database_url, reference,
                                                                             app_settings):
    """An app that owns its engine: the search, the tile cache and the read path's followers all
    follow one connection; cut, it resets each of them and they all listen again."""
    from api.app import create_app

    app = create_app(app_settings.model_copy(update={"database_url": database_url}))
    with TestClient(app):
        state = app.state
        search, tiles, read_path = state.search, state.tile_cache, state.read_path
        followed = read_path._followed

        def all_follow() -> bool:
            return search.changes.listening and tiles.following and followed.listening and search.ready

        _eventually(all_follow, 60)
        assert state.listener.channels() == {"registry_search", "registry_serving", "registry_change_sets"}
        assert _listeners(database_url) == [state.listener.backend_pid]
        spy = Spy()
        state.listener.subscribe("registry_serving", spy)
        _eventually(lambda: spy.listening)
        epoch, gaz = read_path.cache.epoch, search.get()
        _notify(database_url, ("registry_serving", "doorplate_keys:*"))  # drops every render
        _eventually(lambda: read_path.cache.epoch > epoch and spy.payloads == ["doorplate_keys:*"])

        epoch = read_path.cache.epoch
        _terminate(database_url, state.listener.backend_pid)
        _eventually(lambda: state.listener.connections == 2 and all_follow())
        assert read_path.cache.epoch >= epoch + 2  # cleared when lost and when regained
        _eventually(lambda: search.get() is not gaz)  # loaded again after the LISTEN
        assert spy.events[-4:] == ["dead", "reset", "reset", "live"]
        assert _listeners(database_url) == [state.listener.backend_pid]
    assert _listeners(database_url) == []
