"""The doorplate routes' state (signing-key ring, scan counter) is opened by the app's lifespan and
closed by it: buffered scan counts are written on shutdown, before the engine is disposed."""
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from registry.doorplates import KeyRing, ScanCounter


@pytest.fixture()
def scratch_engine(committed_engine):
    return committed_engine


@pytest.fixture()
def conn(scratch_engine):
    """Overrides the rolled-back connection: the builders write to the scratch database, and the
    test commits, so that the counter's own connection sees the plate."""
    with scratch_engine.connect() as c:
        yield c


def _scans(engine, plate_id: int) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT coalesce(sum(count), 0) FROM doorplate_scans WHERE plate_id = :p"),
                         {"p": plate_id}).scalar_one()


def test_should_open_the_key_ring_and_the_scan_counter_with_the_app(scratch_engine, app_settings):
    from api.app import create_app

    app = create_app(app_settings, engine=scratch_engine)
    with TestClient(app):
        assert isinstance(app.state.doorplate_keys, KeyRing)
        assert isinstance(app.state.doorplate_scans, ScanCounter)


def test_should_write_buffered_scans_when_the_app_shuts_down(conn, scratch_engine, app_settings, make_address,
                                                              plate_for):
    from api.app import create_app

    plate_id, token, _ = plate_for(make_address())
    conn.commit()
    app = create_app(app_settings.model_copy(update={"doorplate_scan_flush_seconds": 3600.0}), engine=scratch_engine)
    with TestClient(app) as client:
        for _ in range(3):
            assert client.get(f"/p/{token}", headers={"Accept": "application/json"}).status_code == 200
        assert sum(app.state.doorplate_scans.pending().values()) == 3
        assert _scans(scratch_engine, plate_id) == 0  # buffered, not written yet
    assert _scans(scratch_engine, plate_id) == 3
    assert app.state.doorplate_scans.pending() == {}
