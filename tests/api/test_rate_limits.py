"""Anonymous callers: token buckets per client address and scope (the public write
POST /p/{token}/report has its own, smaller one), 429 problem+json with Retry-After; the
PostgreSQL store counts every API process against one bucket and keeps no client address."""
from __future__ import annotations

import uuid

from sqlalchemy import text

from api.ratelimit import AnonymousLimiter, MemoryBuckets, PostgresBuckets, bucket_key
from registry.keys import create_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limited(client, app_settings, clock, public=3, report=2):
    settings = app_settings.model_copy(update={"rate_limit_public_per_minute": public,
                                               "rate_limit_report_per_minute": report})
    client.app.state.anonymous_limiter = AnonymousLimiter(settings, store=MemoryBuckets(clock=clock))


def test_should_answer_429_with_retry_after_once_an_anonymous_bucket_is_empty(client, app_settings):
    clock = Clock()
    _limited(client, app_settings, clock)
    statuses = [client.get("/v1/divisions/330502").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    res = client.get("/v1/divisions/330502")
    assert res.status_code == 429
    assert res.headers["content-type"].startswith("application/problem+json")
    assert res.headers["Retry-After"] == "20"  # one token back at 3 a minute
    clock.now += 19
    assert client.get("/v1/divisions/330502").status_code == 429  # a refused request takes nothing…
    clock.now += 1
    assert client.get("/v1/divisions/330502").status_code == 200  # refilled: the steady rate goes on


def test_should_limit_the_public_report_by_its_own_bucket_and_store_nothing_refused(client, conn, app_settings):
    clock = Clock()
    _limited(client, app_settings, clock, public=100, report=2)
    before = conn.execute(text("SELECT count(*) FROM doorplate_reports")).scalar_one()
    statuses = [client.post("/p/AAAAAAAAAAAA/report", data={"kind": "damaged"}).status_code for _ in range(3)]
    assert statuses[:2] != [429, 429] and statuses[2] == 429
    assert conn.execute(text("SELECT count(*) FROM doorplate_reports")).scalar_one() == before
    assert client.get("/v1/divisions/330502").status_code == 200  # reading is another bucket


def test_should_not_count_a_keyed_caller_against_the_anonymous_bucket(client, conn, app_settings):
    clock = Clock()
    _limited(client, app_settings, clock, public=1)
    key = create_key(conn, agency="湖州市民政局", scopes=["agency"]).secret
    assert client.get("/v1/divisions/330502").status_code == 200
    assert client.get("/v1/divisions/330502").status_code == 429
    assert client.get("/v1/divisions/330502", headers={"X-API-Key": key}).status_code == 200
    assert client.get("/healthz").status_code == 200  # the load balancer's probe is not limited


def test_postgres_buckets_should_be_shared_by_every_process(engine, app_settings):
    settings = app_settings.model_copy(update={"rate_limit_public_per_minute": 4})
    worker_a = AnonymousLimiter(settings, store=PostgresBuckets(lambda: engine))
    worker_b = AnonymousLimiter(settings, store=PostgresBuckets(lambda: engine))
    client = f"203.0.113.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}"
    answers = [w.check("GET", "/v1/search", client) for w in (worker_a, worker_b, worker_a, worker_b)]
    assert answers == [None, None, None, None]
    assert worker_a.check("GET", "/v1/search", client) is not None
    assert worker_b.check("GET", "/v1/search", client) is not None
    with engine.connect() as c:  # the buckets are keyed by a hash: no client address is stored
        keys = c.execute(text("SELECT key FROM registry_runtime.rate_buckets")).scalars().all()
    assert bucket_key("public", client) in keys
    assert not any(client in k for k in keys)


def test_request_log_should_hold_neither_the_client_address_nor_the_key_nor_the_query(client, conn, caplog):
    import logging

    secret = create_key(conn, agency="湖州市民政局", scopes=["agency"]).secret
    with caplog.at_level(logging.INFO, logger="registry.access"):
        client.get("/v1/search", params={"q": "人民路123号"}, headers={"X-API-Key": secret})
        client.get("/p/SECRETTOKEN123")
    lines = [r.getMessage() for r in caplog.records if r.name == "registry.access"]
    assert any(line.startswith("GET /v1/search 200") for line in lines), lines
    assert any(line.startswith("GET /p/{token}") for line in lines), lines
    text_ = "\n".join(lines)
    for private in ("testclient", secret, secret[:12], "人民路", "SECRETTOKEN123"):
        assert private not in text_


def test_should_serve_and_warn_when_the_bucket_store_fails(app_settings, caplog):
    class Broken:
        def take(self, key, limit):
            raise RuntimeError("permission denied for schema registry_runtime")

    settings = app_settings.model_copy(update={"rate_limit_public_per_minute": 1})
    limiter = AnonymousLimiter(settings, store=Broken())
    assert limiter.check("GET", "/v1/search", "198.51.100.1") is None
    assert any("not limited" in r.getMessage() for r in caplog.records)
