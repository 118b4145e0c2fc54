"""Read replicas and a database lost under load, on real clusters of this test's own.

One primary (initdb into a temporary folder, the suite's migrated database with the reference
divisions restored into it) and one streaming replica (`ReplicaCluster`: pg_basebackup -R), on
ports 55440-55449, both removed at the end even when a test fails. One API (uvicorn in a
thread) owns its engines and is given the replica's URL; the tests run in order on it.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from registry.db.cluster import ManagedCluster
from registry.db.replica import ReplicaCluster, port_free
from registry.settings import Settings
from live_server import serve

PORTS = range(55440, 55450)
# Throwaway clusters: small, no fsync (they are deleted at the end).
FAST = {"shared_buffers": "64MB", "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
        "max_connections": "60", "logging_collector": "off"}
# A change committed on the primary must become searchable through the replica by following, not
# "eventually after a reload": the bound only catches "never" on a loaded CI machine. How fast it is
# (p50 0.4 s, goal 2 s) is measured by bench/bench_replicas.py, not asserted here.
FOLLOW_BOUND_SECONDS = 30.0
FAIL_FAST_SECONDS = 10.0  # no request waits longer than this while the database is down (connect 3 s, pool 5 s)
RECOVER_SECONDS = 20.0


def _free_ports(n: int) -> list[int]:
    ports = [p for p in PORTS if port_free(p)][:n]
    if len(ports) < n:
        pytest.skip(f"ports {PORTS.start}-{PORTS.stop - 1} are taken")
    return ports


def _restore_into(cluster: ManagedCluster, source_url: str, database: str) -> None:
    src = make_url(source_url)
    dump = subprocess.run([str(cluster.bin_dir / "pg_dump"), "-h", src.host, "-p", str(src.port), "-U", src.username, "-d", src.database,
                           "-Fc", "--no-owner"], capture_output=True, check=True).stdout
    cluster.ensure_database(database)
    subprocess.run([str(cluster.bin_dir / "pg_restore"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "registry", "-d", database,
                    "--no-owner", "--single-transaction"], input=dump, capture_output=True, check=True)


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def _start_after_kill(start, deadline: float) -> None:
    """Start a cluster whose postmaster was killed: its orphaned backends may hold the shared memory
    for a moment (PostgreSQL refuses to start until they are gone)."""
    while True:
        try:
            start()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture(scope="module")
def clusters(database_url, reference):
    root = Path(tempfile.mkdtemp(prefix="registry-replicas-", dir="/tmp"))
    os.chmod(root, 0o755)  # the clusters run as `postgres` under root
    p_port, r_port = _free_ports(2)
    settings = Settings(data_dir=root / "pgdata", pg_port=p_port, database_name="registry")
    primary = ManagedCluster(settings, conf=FAST, sync=False)
    replica = ReplicaCluster(settings, "t", primary=primary, root=root / "replicas", conf=FAST)
    try:
        primary.start()
        _restore_into(primary, database_url, "registry")
        replica.start(r_port)
        yield primary, replica
    finally:
        for stop in (replica.remove, primary.stop):
            try:
                stop()
            except Exception:  # a killed cluster: its processes are ended below
                pass
        for data in (root / "replicas" / "t", root / "pgdata"):
            pid_file = data / "postmaster.pid"
            if pid_file.exists():
                try:
                    os.kill(_postmaster_pid(data), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def api(clusters, app_settings_base):
    from api.app import create_app

    primary, replica = clusters
    settings = app_settings_base.model_copy(update={
        "database_url": primary.url(), "replica_urls": (replica.url(),), "replica_check_seconds": 0.5,
        "pool_size": 4})
    app = create_app(settings)
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        app.state.search.get(timeout=60)
        yield app, client


@pytest.fixture(scope="module")
def app_settings_base(settings):
    return settings.model_copy(update={"key_cache_seconds": 0.0, "rate_limit_public_per_minute": 0,
                                       "rate_limit_report_per_minute": 0})


def _division_code(primary: ManagedCluster) -> str:
    with psycopg.connect(primary._libpq("registry")) as c:
        return c.execute("SELECT nbs_code FROM divisions WHERE level = 'township' AND nbs_code IS NOT NULL "
                         "ORDER BY id LIMIT 1").fetchone()[0]


def _add_road(primary: ManagedCluster, name: str) -> int:
    with psycopg.connect(primary._libpq("registry"), autocommit=True) as c:
        d, county = c.execute("SELECT v.id, c.id FROM divisions v JOIN divisions t ON t.id = v.parent_id "
                              "JOIN divisions c ON c.id = t.parent_id WHERE v.level = 'village' "
                              "ORDER BY v.id LIMIT 1").fetchone()
        return c.execute("INSERT INTO place_names (category, name, division_id, county_id) "
                         "VALUES ('road', %s, %s, %s) RETURNING id", (name, d, county)).fetchone()[0]


def _found(client: httpx.Client, name: str) -> bool:
    r = client.get("/v1/search", params={"q": name, "limit": 5})
    assert r.status_code == 200, r.text
    return name in str(r.json())


def _wait_found(client: httpx.Client, name: str, limit: float) -> float:
    start = time.monotonic()
    while not _found(client, name):
        assert time.monotonic() - start < limit, f"{name} not searchable after {limit} s"
        time.sleep(0.05)
    return time.monotonic() - start


def _new_name() -> str:
    return "测试" + "".join("零一二三四五六七八九"[int(c, 16) % 10] for c in uuid.uuid4().hex[:6]) + "路"


def test_should_stream_to_the_replica_and_say_so_in_its_status(clusters):
    primary, replica = clusters
    st = replica.status()
    assert st.running and st.in_recovery
    assert st.lag_bytes is not None and st.lag_bytes >= 0
    assert replica.url().endswith(f":{replica.port}/registry")


def test_should_refuse_a_taken_name_and_a_busy_port(clusters):
    from registry.db.replica import ReplicaError

    primary, replica = clusters
    with pytest.raises(ReplicaError, match="taken"):
        replica.start(replica.port + 1)
    other = ReplicaCluster(replica.settings, "u", primary=primary, root=replica.data_dir.parent)
    with pytest.raises(ReplicaError, match="busy"):
        other.start(replica.port)
    assert not other.initialised


def _replayed(replica, seconds: float = 30.0) -> None:
    """Wait until the replica has replayed all the primary has written (the fixtures' restore is a
    burst of WAL): the freshness measured is then the search's following, not that catch-up."""
    deadline = time.monotonic() + seconds
    while replica.status().lag_bytes not in (0, None) and time.monotonic() < deadline:
        time.sleep(0.1)


def _started(app, seconds: float = 30.0) -> None:
    """Wait until the app's start-up work is done: reverse memory builds the division polygons in
    the background once it listens (seconds of CPU for the real polygons), which a freshly started
    worker's search thread competes with."""
    memory = app.state.read_path.reverse_memory
    deadline = time.monotonic() + seconds
    while memory.listening and memory.areas is None and time.monotonic() < deadline:
        time.sleep(0.1)


def test_should_search_a_change_committed_on_the_primary_by_following_the_replica(api, clusters):
    app, client = api
    assert app.state.search.engine is app.state.db.replicas[0].bulk  # the search reads the replica
    _replayed(clusters[1])
    _started(app)
    gaz = app.state.search.get(timeout=60)
    applied = gaz.changes_applied
    name = _new_name()
    assert not _found(client, name)
    _add_road(clusters[0], name)
    _wait_found(client, name, FOLLOW_BOUND_SECONDS)
    # found in the same gazetteer, by the change applied to it (not by a load of a new one)
    now = app.state.search.get(timeout=1)
    assert now is gaz, "the gazetteer was loaded again instead of following the change"
    assert gaz.changes_applied > applied


def test_should_read_on_and_refuse_writes_fast_while_the_primary_is_down(api, clusters):
    app, client = api
    primary, _ = clusters
    code = _division_code(primary)
    assert client.get(f"/v1/divisions/{code}").status_code == 200
    primary.stop()
    try:
        for _ in range(3):
            assert client.get(f"/v1/divisions/{code}").status_code == 200
            assert client.get("/v1/search", params={"q": "湖州"}).status_code == 200
        start = time.monotonic()
        r = client.post("/p/NOTATOKEN/report", json={"kind": "wrong"})
        assert time.monotonic() - start < FAIL_FAST_SECONDS
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert int(r.headers["retry-after"]) > 0
        assert r.json()["type"].endswith("primary-unavailable") and "127.0.0.1" not in r.text
    finally:
        primary.start()
    deadline = time.monotonic() + RECOVER_SECONDS  # the API recovers by itself
    while client.post("/p/NOTATOKEN/report", json={"kind": "wrong"}).status_code == 503:
        assert time.monotonic() < deadline, "writes still refused after the primary came back"
        time.sleep(0.2)


def test_should_move_reads_and_search_to_the_primary_while_the_replica_is_down(api, clusters):
    app, client = api
    primary, replica = clusters
    code = _division_code(primary)
    replica.stop()
    try:
        assert client.get(f"/v1/divisions/{code}").status_code == 200
        name = _new_name()
        _add_road(primary, name)
        _wait_found(client, name, RECOVER_SECONDS)  # followed on the primary meanwhile
        assert app.state.search.engine is app.state.db.primary.engine
    finally:
        replica.start()
    deadline = time.monotonic() + RECOVER_SECONDS
    while not app.state.db.replicas[0].healthy:
        assert time.monotonic() < deadline, "the replica is not used again after it came back"
        time.sleep(0.2)


def test_should_fail_fast_and_recover_when_the_database_is_killed_under_load(api, clusters):
    app, client = api
    primary, replica = clusters
    code = _division_code(primary)
    results: list[tuple[float, int]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=60) as c:
            while not stop.is_set():
                start = time.monotonic()
                r = c.get(f"/v1/divisions/{code}") if len(results) % 2 else c.get("/v1/boundary-lines",
                                                                                     params={"level": "county"})
                results.append((time.monotonic() - start, r.status_code))

    workers = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        time.sleep(0.5)
        os.kill(_postmaster_pid(primary.data_dir), signal.SIGKILL)
        os.kill(_postmaster_pid(replica.data_dir), signal.SIGKILL)
        time.sleep(2.0)  # the database is gone: every request fails fast meanwhile
        during = len(results)
        deadline = time.monotonic() + RECOVER_SECONDS
        _start_after_kill(primary.start, deadline)
        _start_after_kill(replica.start, deadline)
        while len(results) < during + 10 or any(s != 200 for _, s in results[-10:]):
            assert time.monotonic() < deadline, "the API did not recover after the database restarted"
            time.sleep(0.1)
    finally:
        stop.set()
        for w in workers:
            w.join(FAIL_FAST_SECONDS + 5)
    statuses = {s for _, s in results}
    assert statuses <= {200, 503}, statuses  # never a 500, never a hang
    assert 503 in statuses
    assert max(t for t, _ in results) < FAIL_FAST_SECONDS


PGBOUNCER = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)


@pytest.fixture(scope="module")
def pgbouncer(clusters):
    """pgbouncer in transaction mode in front of the primary, as the README describes it (one for
    the module: its tests share the gazetteer generation of its URL)."""
    if PGBOUNCER is None:
        pytest.skip("pgbouncer is not installed (scripts/setup-system.sh installs it)")
    primary, _ = clusters
    (port,) = _free_ports(1)
    folder = Path(tempfile.mkdtemp(prefix="registry-pgbouncer-", dir="/tmp"))
    os.chmod(folder, 0o755)
    (folder / "users.txt").write_text('"registry" ""\n')
    (folder / "pgbouncer.ini").write_text(f"""[databases]
registry = host=127.0.0.1 port={primary.port} dbname=registry
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = transaction
default_pool_size = 8
ignore_startup_parameters = extra_float_digits, options
""")
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([*run_as, PGBOUNCER, str(folder / "pgbouncer.ini")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while port_free(port):
            assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
            assert time.monotonic() < deadline, "pgbouncer did not listen"
            time.sleep(0.05)
        yield f"postgresql+psycopg://registry@127.0.0.1:{port}/registry"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)


def test_should_serve_and_follow_changes_through_pgbouncer_in_transaction_mode(pgbouncer, clusters, app_settings_base):
    from api.app import create_app

    primary, _ = clusters
    settings = app_settings_base.model_copy(update={
        "database_url": pgbouncer, "db_prepared_statements": False, "search_follow": "poll", "pool_size": 4})
    app = create_app(settings)
    code = _division_code(primary)
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        app.state.search.get(timeout=60)
        for _ in range(40):  # past psycopg's prepare threshold (5) on every pooled connection (500s otherwise)
            assert client.get(f"/v1/divisions/{code}").status_code == 200
        name = _new_name()
        _add_road(primary, name)
        _wait_found(client, name, RECOVER_SECONDS)  # no NOTIFY through the pooler: the change log is followed
        # LISTEN through the pooler would miss every notification: refused, so nothing trusts it
        listener = app.state.listener
        assert listener.pooled and "REGISTRY_LISTEN_URL" in str(listener.error)
        assert not app.state.read_path.cache.listening and not app.state.tile_cache.listening
        assert not app.state.read_path.reference.listening and not app.state.read_path.reverse_memory.listening


def test_should_follow_notifications_behind_pgbouncer_on_the_listen_url(pgbouncer, clusters, app_settings_base):
    """REGISTRY_LISTEN_URL on the primary itself: the caches and the search follow NOTIFY."""
    from api.app import create_app

    primary, _ = clusters
    settings = app_settings_base.model_copy(update={
        "database_url": pgbouncer, "listen_url": primary.url(), "db_prepared_statements": False, "pool_size": 4})
    app = create_app(settings)
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        app.state.search.get(timeout=60)
        followers = (app.state.read_path.cache, app.state.read_path.reference, app.state.read_path.reverse_memory,
                     app.state.tile_cache, app.state.search.changes)
        deadline = time.monotonic() + RECOVER_SECONDS
        while not all(f.listening for f in followers):
            assert time.monotonic() < deadline, "the caches never listened on REGISTRY_LISTEN_URL"
            time.sleep(0.05)
        assert not app.state.listener.pooled and app.state.search.follow is None  # NOTIFY, not the change log
        with psycopg.connect(primary._libpq("registry")) as c:  # the listener's session is the server's own
            assert c.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND application_name = "
                             "'registry-listener'", (app.state.listener.backend_pid,)).fetchone()[0] == 1
        name = _new_name()
        _add_road(primary, name)
        _wait_found(client, name, RECOVER_SECONDS)


def test_should_stop_reading_from_a_replica_once_it_is_promoted(api, clusters):
    """Last: it ends the replica's recovery (the cluster is removed afterwards)."""
    app, client = api
    primary, replica = clusters
    replica.promote()
    assert replica.status().in_recovery is False
    node = app.state.db.replicas[0]
    deadline = time.monotonic() + RECOVER_SECONDS
    while node.healthy:  # a promoted replica no longer follows the primary: no reads for it
        assert time.monotonic() < deadline, "a promoted replica still gets reads"
        time.sleep(0.1)
    assert "promoted" in node.error
    assert app.state.db.read_engine() is app.state.db.primary.engine
    assert client.get(f"/v1/divisions/{_division_code(primary)}").status_code == 200
