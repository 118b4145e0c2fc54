"""A request's connection is committed before its answer is sent: a COMMIT that fails is the
answer (an error), never a 200 that went out before the write was lost."""
from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.deps import DbConn


def test_should_not_answer_200_when_the_commit_of_the_request_fails(engine, reference, app_settings):
    app = create_app(app_settings, engine=engine)

    @app.post("/_test/deferred-violation")
    def deferred_violation(conn: DbConn) -> dict:
        # a unique constraint checked only at COMMIT: the handler succeeds, the commit fails
        conn.execute(text("CREATE TEMP TABLE commit_probe (x int UNIQUE DEFERRABLE INITIALLY DEFERRED) "
                          "ON COMMIT DROP"))
        conn.execute(text("INSERT INTO commit_probe VALUES (1), (1)"))
        return {"written": True}

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/_test/deferred-violation")
    assert r.status_code >= 500 and r.json() != {"written": True}
    assert r.headers["content-type"].startswith("application/problem+json")
