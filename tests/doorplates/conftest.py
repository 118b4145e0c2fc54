"""Builders for doorplate tests: streets, addresses and facilities inserted with SQL in the test's
rolled-back transaction, on top of the real reference divisions."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from sqlalchemy import Connection, text

from registry.doorplates import KeyRing, issue_plates, live_plate_for, natural_kind, scan_url
from registry.keys import create_key
from registry.settings import Settings

CENTRE = (120.0880, 30.8930)  # near 湖州 city centre (CGCS2000 ≈ WGS84)
_seq = itertools.count(1)


@dataclass(frozen=True)
class Place:
    village_id: int
    village_code: str
    village: str
    township_id: int
    township: str
    county_id: int
    county: str


@pytest.fixture(scope="session")
def committed_engine(database_url):
    """A database of its own with the reference divisions, for the tests whose rows must be committed
    (read by other connections: the scan counter's, the async read pool's); shared by their modules."""
    from sqlalchemy import create_engine

    from city_databases import scratch_database
    from loaders.reference import load_reference

    with scratch_database(database_url, "plates") as url:
        eng = create_engine(url)
        try:
            with eng.begin() as c:
                load_reference(c, actor="tests")
            yield eng
        finally:
            eng.dispose()


@pytest.fixture()
def committed_conn(committed_engine):
    """A connection to the plate database itself: what the builders write there and the test
    commits is seen by the app's own connections (the async read pool); the rest is rolled back."""
    with committed_engine.connect() as c:
        yield c
        c.rollback()


@pytest.fixture()
def fast(committed_engine, app_settings):
    """A TestClient of an app on the plate database, with no overridden connection: its scans,
    reverse and /healthz take the fast read path (`client.app_state` is the app's state)."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(app_settings, engine=committed_engine)
    with TestClient(app) as client:
        client.app_state = app.state
        yield client


@pytest.fixture()
def app_settings(app_settings: Settings) -> Settings:
    # The suite's app settings (keys read every time, anonymous limits off: every TestClient is one
    # client address), and scans written at once, inside the test's transaction.
    return app_settings.model_copy(update={"doorplate_scan_flush_seconds": 0.0})


@pytest.fixture()
def place(conn: Connection) -> Place:
    row = conn.execute(text("""
        SELECT v.id AS village_id, coalesce(v.mca_code, v.nbs_code) AS village_code, v.name AS village,
               t.id AS township_id, t.name AS township, c.id AS county_id, c.name AS county
        FROM divisions v JOIN divisions t ON t.id = v.parent_id JOIN divisions c ON c.id = t.parent_id
        WHERE v.level = 'village' AND v.status = 'active' AND c.name = '吴兴区' AND t.name LIKE '%街道'
        ORDER BY v.nbs_code LIMIT 1
    """)).mappings().one()
    return Place(**row)


@pytest.fixture()
def make_street(conn: Connection, place: Place):
    def _make(name: str = "人民路", *, pinyin: str | None = None, division_id: int | None = None) -> int:
        return conn.execute(text("""
            INSERT INTO place_names (category, name, pinyin, division_id, county_id)
            VALUES ('road', :name, :pinyin, :division_id, :county_id) RETURNING id
        """), {"name": name, "pinyin": pinyin, "division_id": division_id or place.township_id,
               "county_id": place.county_id}).scalar_one()

    return _make


@pytest.fixture()
def make_address(conn: Connection, place: Place, make_street):
    """An address with defaults (人民路12号 in a 吴兴区 community); any column can be overridden."""
    streets: dict[str, int] = {}

    def _make(*, street: str | None = "人民路", number: str = "12号", lon: float = CENTRE[0],
              lat: float = CENTRE[1], **overrides) -> int:
        if street is not None and "street_id" not in overrides:
            if street not in streets:
                streets[street] = make_street(street)
            overrides["street_id"] = streets[street]
        seq = next(_seq)
        values = {
            "division_id": place.village_id,
            "street_id": None,
            "compound_id": None,
            "group_no": "",
            "number": number,
            "number_main": int("".join(ch for ch in number.split("-")[0] if ch.isdigit()) or 0) or None,
            "building": "",
            "unit": "",
            "room": "",
            "full_text": f"浙江省湖州市{place.county}{place.township}{street or ''}{number}",
            "code": f"{place.village_code}{seq:08d}",
            "local_seq": seq,
            "status": "active",
            "lon": lon,
            "lat": lat,
        }
        values.update(overrides)
        return conn.execute(text("""
            INSERT INTO addresses (division_id, street_id, compound_id, group_no, number, number_main, building,
                                   unit, room, full_text, code, local_seq, status, geom)
            VALUES (:division_id, :street_id, :compound_id, :group_no, :number, :number_main, :building, :unit,
                    :room, :full_text, :code, :local_seq, :status, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490))
            RETURNING id
        """), values).scalar_one()

    return _make


@pytest.fixture()
def make_facility(conn: Connection, place: Place):
    def _make(category: str, name: str, lon: float, lat: float, *, phone: str | None = None,
              status: str = "active") -> int:
        return conn.execute(text("""
            INSERT INTO facilities (category, name, division_id, address_text, phone, status, geom)
            VALUES (:category, :name, :division_id, :address_text, :phone, :status,
                    ST_SetSRID(ST_MakePoint(:lon, :lat), 4490))
            RETURNING id
        """), {"category": category, "name": name, "division_id": place.village_id, "address_text": f"{name}地址",
               "phone": phone, "status": status, "lon": lon, "lat": lat}).scalar_one()

    return _make


@pytest.fixture()
def ring() -> KeyRing:
    return KeyRing(ttl=0)


@pytest.fixture()
def base_url(settings: Settings) -> str:
    return settings.public_base_url


@pytest.fixture()
def plate_for(conn: Connection, ring: KeyRing, base_url: str):
    """Issue the plate of an address; returns (plate id, token, scan URL)."""

    def _issue(address_id: int, kind: str | None = None) -> tuple[int, str, str]:
        """The plate of `kind` (default: the address's own kind: door, building, unit or flat)."""
        if kind is None:
            parts = conn.execute(text("SELECT building, unit, room FROM addresses WHERE id = :a"),
                                 {"a": address_id}).one()
            kind = natural_kind(building=parts.building, unit=parts.unit, room=parts.room)
        issue_plates(conn, actor="tests", address_id=address_id, kind=kind)
        plate_id = live_plate_for(conn, address_id, kind)
        key_id = conn.execute(text("SELECT key_id FROM doorplates WHERE id = :id"), {"id": plate_id}).scalar_one()
        token = ring.token_for(conn, plate_id, key_id)
        return plate_id, token, scan_url(base_url, token)

    return _issue


@pytest.fixture()
def editor(conn: Connection) -> dict[str, str]:
    return {"X-API-Key": create_key(conn, agency="湖州市民政局", scopes=["editor"]).secret}


@pytest.fixture()
def agency(conn: Connection) -> dict[str, str]:
    return {"X-API-Key": create_key(conn, agency="湖州市公安局", scopes=["agency"]).secret}
