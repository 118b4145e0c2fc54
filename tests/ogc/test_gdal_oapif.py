"""GDAL's OAPIF driver (the one `ogrinfo OAPIF:…`, `ogr2ogr` and pyogrio use) reading collections
from a real `registry serve` on a free loopback port, over the committed generated city."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import text

pyogrio = pytest.importorskip("pyogrio")
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(ogc_city):
    port = _free_port()
    env = {**os.environ, "REGISTRY_DATABASE_URL": ogc_city.url, "REGISTRY_LOG_LEVEL": "WARNING"}
    registry = Path(sys.executable).parent / "registry"
    proc = subprocess.Popen([str(registry), "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/ogc/conformance", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(proc.stderr.read().decode()) from None
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_should_let_gdal_oapif_read_a_collection_with_all_its_rows_and_its_crs(server, ogc_city):
    assert "OAPIF" in pyogrio.list_drivers()
    with ogc_city.engine.connect() as conn:
        active = conn.execute(text("SELECT count(*) FROM addresses WHERE status = 'active'")).scalar_one()
        some = conn.execute(text("SELECT full_text FROM addresses WHERE status = 'active' ORDER BY id LIMIT 1")).scalar_one()
    layers = {name for name, _ in pyogrio.list_layers(f"OAPIF:{server}/ogc")}
    assert {"addresses", "divisions-county", "boundary-markers"} <= layers
    df = pyogrio.read_dataframe(f"OAPIF:{server}/ogc", layer="addresses")
    assert len(df) == active
    assert df.crs is not None and df.crs.to_epsg() in (4490, 4326)  # storageCrs, or CRS84 if GDAL prefers it
    assert some in set(df["address"])  # Chinese text intact
    assert df.geometry.x.between(118, 122).all()  # longitude in x whatever the axis order on the wire
    counties = pyogrio.read_dataframe(f"OAPIF:{server}/ogc", layer="divisions-county")
    assert len(counties) == 5 and "吴兴区" in set(counties["name"])


def test_should_let_gdal_push_an_attribute_filter_down_as_cql2(server, ogc_city):
    with ogc_city.engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM addresses WHERE status = 'active' AND number_main > 5")).scalar_one()
    df = pyogrio.read_dataframe(f"OAPIF:{server}/ogc", layer="addresses", where="number_main > 5")
    assert len(df) == n


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="Debian gdal-bin not installed")
def test_should_answer_ogrinfo_from_debian_gdal(server):
    out = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{server}/ogc", "divisions-county"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Feature Count: 5" in out.stdout
