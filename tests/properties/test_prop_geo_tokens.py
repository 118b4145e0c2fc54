"""Properties of the coordinate converters and the doorplate token signature."""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from registry.doorplates.tokens import MAX_KEY_ID, InvalidSignature, InvalidToken, KeyRing, parse, sign
from registry.geo.chinese_offsets import (bd09_to_gcj02, gcj02_to_bd09, gcj02_to_wgs84, transform_coords,
                                          wgs84_to_gcj02)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Mainland China's extent, roughly: where GCJ-02 is applied.
lon_cn = st.floats(73.7, 134.8, allow_nan=False, allow_infinity=False)
lat_cn = st.floats(18.2, 53.5, allow_nan=False, allow_infinity=False)
# GCJ-02's inverse iterates to well under a centimetre; BD-09's inverse is the published closed
# form, which is approximate: up to 0.22 m over China, 0.13 m over Huzhou (measured on a grid).
GCJ_TOL_M = 0.01
BD_TOL_M = 0.5


def _metres(lon1, lat1, lon2, lat2) -> float:
    dy = (lat2 - lat1) * 111_320.0
    dx = (lon2 - lon1) * 111_320.0 * math.cos(math.radians(lat1))
    return math.hypot(dx, dy)


@FAST
@given(lon_cn, lat_cn)
def test_wgs84_to_gcj02_and_back_should_return_within_a_centimetre(lon, lat):
    g = wgs84_to_gcj02(lon, lat)
    back = gcj02_to_wgs84(*g)
    assert _metres(lon, lat, float(back[0]), float(back[1])) < GCJ_TOL_M


@FAST
@given(lon_cn, lat_cn)
def test_gcj02_to_bd09_and_back_should_return_within_half_a_metre(lon, lat):
    back = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert _metres(lon, lat, float(back[0]), float(back[1])) < BD_TOL_M


@FAST
@given(lon_cn, lat_cn, st.sampled_from(["wgs84", "gcj02", "bd09", "cgcs2000"]),
       st.sampled_from(["wgs84", "gcj02", "bd09", "cgcs2000"]))
def test_any_system_to_any_and_back_should_return_within_tolerance(lon, lat, a, b):
    x, y = transform_coords(lon, lat, a, b)
    back = transform_coords(float(x), float(y), b, a)
    tol = BD_TOL_M if "bd09" in (a, b) else GCJ_TOL_M
    assert _metres(lon, lat, float(back[0]), float(back[1])) < tol


@FAST
@given(lon_cn, lat_cn)
def test_the_offset_should_stay_within_a_kilometre(lon, lat):
    g = wgs84_to_gcj02(lon, lat)
    assert _metres(lon, lat, float(g[0]), float(g[1])) < 1_000


# --- tokens ---------------------------------------------------------------------------------------------
plate_ids = st.integers(1, 2**40)
key_ids = st.integers(1, MAX_KEY_ID)
secrets_ = st.binary(min_size=16, max_size=64)
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _ring(key_id: int, secret: bytes) -> KeyRing:
    ring = KeyRing()
    ring.secret = lambda conn, kid: secret if kid == key_id else None  # the table, without the table
    return ring


@FAST
@given(plate_ids, key_ids, secrets_)
def test_a_signed_token_should_verify_to_its_plate_and_key(plate_id, key_id, secret):
    token = sign(plate_id, key_id, secret)
    parsed = _ring(key_id, secret).verify(None, token)
    assert (parsed.plate_id, parsed.key_id) == (plate_id, key_id)
    assert parse(token).plate_id == plate_id


@FAST
@given(plate_ids, key_ids, secrets_, st.data())
def test_any_one_character_change_should_be_refused(plate_id, key_id, secret, data):
    token = sign(plate_id, key_id, secret)
    i = data.draw(st.integers(0, len(token) - 1))
    c = data.draw(st.sampled_from(B64URL + "=.+/ 中\x00"))
    assume(c != token[i])
    altered = token[:i] + c + token[i + 1:]
    with pytest.raises((InvalidToken, InvalidSignature)):
        _ring(key_id, secret).verify(None, altered)


@FAST
@given(plate_ids, key_ids, secrets_, secrets_)
def test_a_token_should_not_verify_under_another_secret(plate_id, key_id, secret, other):
    assume(secret != other)
    with pytest.raises(InvalidSignature):
        _ring(key_id, other).verify(None, sign(plate_id, key_id, secret))


@FAST
@given(st.text(max_size=60))
def test_parse_should_raise_only_its_typed_error_on_any_text(s):
    try:
        parse(s)
    except InvalidToken:
        pass
