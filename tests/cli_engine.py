"""The CLI's engine on the test's connection: run a `registry` command inside the test's transaction."""
from contextlib import contextmanager


class SavepointEngine:
    """Stands in for `loaders.cli_support.engine()`: every `begin()`/`connect()` is a savepoint of the
    test's transaction, undone when the command fails, rolled back with the test either way."""

    def __init__(self, conn) -> None:
        self.conn = conn

    @contextmanager
    def begin(self):
        with self.conn.begin_nested():
            yield self.conn

    connect = begin


def on_test_connection(monkeypatch, conn, *modules) -> None:
    """The commands of these CLI modules (each imports `engine` from loaders.cli_support) use `conn`."""
    for module in modules:
        monkeypatch.setattr(module, "engine", lambda: SavepointEngine(conn))
