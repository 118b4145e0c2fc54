"""API keys: printed once, stored hashed, scoped, revocable."""
import pytest
from sqlalchemy import select

from registry.db.tables import api_keys
from registry.errors import InvalidQuery
from registry.keys import create_key, revoke_key


def test_should_store_only_the_hash_of_a_key(conn):
    new = create_key(conn, agency="湖州市公安局", scopes=["agency"])
    stored = conn.execute(select(api_keys.c.key_hash, api_keys.c.prefix)).all()
    assert all(new.secret not in (h, p) for h, p in stored)
    assert new.secret.startswith(f"hzr_{new.key.prefix}_")


def test_should_let_an_editor_key_read_what_needs_editor(client, conn, reference):
    secret = create_key(conn, agency="湖州市民政局", scopes=["editor"]).secret
    res = client.get("/v1/change-sets/1", headers={"X-API-Key": secret})
    assert res.status_code == 200 and res.json()["kind"] == "load_reference"


def test_should_let_a_higher_scope_do_what_a_lower_one_may(client, conn):
    secret = create_key(conn, agency="湖州市民政局", scopes=["admin"]).secret
    assert client.get("/v1/change-sets/1", headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_should_forbid_an_agency_key_an_editor_operation(client, conn):
    secret = create_key(conn, agency="湖州市卫健委", scopes=["agency"]).secret
    res = client.get("/v1/change-sets/1", headers={"X-API-Key": secret})
    assert res.status_code == 403 and "editor" in res.json()["detail"]


def test_should_refuse_a_revoked_key(client, conn):
    new = create_key(conn, agency="湖州市邮政管理局", scopes=["editor"])
    assert client.get("/v1/change-sets/1", headers={"X-API-Key": new.secret}).status_code == 200
    revoke_key(conn, new.key.prefix)
    res = client.get("/v1/change-sets/1", headers={"X-API-Key": new.secret})
    assert res.status_code == 401 and "吊销" in res.json()["detail"]


def test_should_name_an_unknown_scope(conn):
    with pytest.raises(InvalidQuery) as err:
        create_key(conn, agency="x", scopes=["superuser"])
    assert err.value.parameter == "scope" and "superuser" in err.value.message


def test_should_answer_429_with_retry_after_past_the_keys_rate_limit(client, conn):
    from api.ratelimit import MemoryBuckets, RateLimiter

    client.app.state.rate_limiter = RateLimiter(MemoryBuckets(clock=lambda: 1000.0))  # time stands still
    secret = create_key(conn, agency="湖州市统计局", scopes=["editor"], rate_limit_per_minute=3).secret
    statuses = [client.get("/v1/change-sets/1", headers={"X-API-Key": secret}).status_code for _ in range(4)]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3] == 429
    res = client.get("/v1/change-sets/1", headers={"X-API-Key": secret})
    assert res.headers["content-type"].startswith("application/problem+json")
    assert int(res.headers["Retry-After"]) == 20  # a token back at 3 a minute
