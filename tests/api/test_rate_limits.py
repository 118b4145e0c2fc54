"""Anonymous callers: token buckets per client address and scope (the public write
POST /p/{token}/report has its own, smaller one), 429 problem+json with Retry-After; the
PostgreSQL store counts every API process against one bucket (leased per worker, within a stated
bound, without a statement per request) and keeps no client address. Keys have token buckets too."""
from __future__ import annotations

import math
import time
import uuid

from sqlalchemy import text

from api.ratelimit import AnonymousLimiter, LeasedBuckets, MemoryBuckets, PostgresStore, bucket_key
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


def _workers(engine, n=2, **kw):
    """`n` API workers as the app builds them: each its own leases, each its own store object."""
    return [LeasedBuckets(PostgresStore(lambda: engine), background=False, **kw) for _ in range(n)]


def test_leased_buckets_should_hold_the_limit_across_two_workers_within_the_stated_bound(engine):
    limit, share = 30, 0.1
    a, b = _workers(engine, share=share)
    lease = a.lease_size(limit)  # 3: the credit a worker may use before the store answers
    key = f"public:test-{uuid.uuid4().hex}"
    t0 = time.monotonic()
    granted = 0
    for _ in range(20):  # both workers hammer the bucket, settling between bursts as the thread would
        for w in (a, b):
            granted += sum(w.take(key, limit)[0] for _ in range(5))
        a.settle()
        b.settle()
    refill = (time.monotonic() - t0) * limit / 60
    assert limit - 2 * lease <= granted <= limit + 2 * lease + math.ceil(refill), granted
    refused = [w.take(key, limit) for w in (a, b)]
    assert [ok for ok, _ in refused] == [False, False]  # each worker knows the shared bucket is empty
    assert all(0 < retry <= 60 for _, retry in refused)  # …and when a token is back (Retry-After)


def test_should_pay_credit_back_so_that_the_rate_over_time_is_the_limit(engine):
    a, b = _workers(engine, share=0.5)
    key = f"public:test-{uuid.uuid4().hex}"
    granted = sum(w.take(key, 4)[0] for _ in range(4) for w in (a, b))  # both on credit before any answer
    assert granted <= 4 + 2 * a.lease_size(4)
    a.settle()
    b.settle()
    with engine.connect() as c:  # the credit used beyond the bucket is owed: the shared level went below zero
        level = c.execute(text("SELECT tokens FROM registry_runtime.rate_leases WHERE key = :k"), {"k": key}).scalar_one()
    assert level <= 4 - granted + 0.5


def test_should_answer_429_problem_to_a_keyed_caller_over_its_limit_across_two_app_instances(client, conn, engine):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import get_conn

    other = create_app(client.app.state.settings, engine=engine)  # a second worker, the same database
    other.dependency_overrides[get_conn] = client.app.dependency_overrides[get_conn]
    secret = create_key(conn, agency="湖州市统计局", scopes=["agency"], rate_limit_per_minute=4).secret
    with TestClient(other) as second:
        answers = [c.get("/v1/divisions/330502", headers={"X-API-Key": secret}) for _ in range(6)
                   for c in (client, second)]
    ok = [r.status_code for r in answers].count(200)
    lease = client.app.state.rate_buckets.lease_size(4)
    assert 4 - 2 * lease <= ok <= 4 + 2 * lease + 1
    refused = [r for r in answers if r.status_code == 429]
    assert refused and all(r.headers["content-type"].startswith("application/problem+json") for r in refused)
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert refused[-1].json()["parameter"] == "X-API-Key"


def test_should_not_query_postgresql_per_request(client, conn, app_settings):
    buckets = client.app.state.rate_buckets
    assert isinstance(buckets, LeasedBuckets)  # the default backend: postgres
    settings = app_settings.model_copy(update={"rate_limit_public_per_minute": 6000})
    client.app.state.anonymous_limiter = AnonymousLimiter(settings, store=buckets)
    secret = create_key(conn, agency="湖州市民政局", scopes=["agency"], rate_limit_per_minute=6000).secret
    before = buckets.store.exchanges
    for i in range(30):
        headers = {"X-API-Key": secret} if i % 2 else {}
        assert client.get("/openapi.json" if i == 0 else "/v1/divisions/330502", headers=headers).status_code == 200
    buckets.settle()
    assert 1 <= buckets.store.exchanges - before <= 15  # settlements, not one statement per request


def test_buckets_should_be_keyed_by_a_hash_and_hold_no_client_address(engine, app_settings):
    settings = app_settings.model_copy(update={"rate_limit_public_per_minute": 4})
    store = LeasedBuckets(PostgresStore(lambda: engine), background=False)
    worker = AnonymousLimiter(settings, store=store)
    client = f"203.0.113.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}"
    assert worker.check("GET", "/v1/search", client) is None
    store.settle()
    with engine.connect() as c:
        keys = c.execute(text("SELECT key FROM registry_runtime.rate_leases")).scalars().all()
    assert bucket_key("public", client) in keys
    assert not any(client in k for k in keys)
    store.close()  # the lease goes back on shutdown
    with engine.connect() as c:
        level = c.execute(text("SELECT tokens FROM registry_runtime.rate_leases WHERE key = :k"),
                          {"k": bucket_key("public", client)}).scalar_one()
    assert level >= 3 - 0.01  # four, less the one request


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
