"""The synthetic city generator: real divisions, clean tilings, located and unique addresses,
exact facility counts, the spec anchors, and determinism. No database needed."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from data.generate import GeneratedCity, generate_city
from data.generate.reference import REFERENCE_DIR

SEED = 7
N_ADDRESSES = 3_000
KEY = ["division_code", "street", "compound", "natural_village", "group", "number", "building", "unit", "room"]
COLUMNS = KEY + ["lon", "lat"]
TOLERANCE = 1e-6  # overlap / gap area as a fraction of the county's area


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> GeneratedCity:
    return generate_city(tmp_path_factory.mktemp("city"), addresses=N_ADDRESSES, seed=SEED)


@pytest.fixture(scope="module")
def layers(city) -> dict[str, pd.DataFrame]:
    names = [name for name, _ in pyogrio.list_layers(city.gpkg)]
    return {name: pyogrio.read_dataframe(city.gpkg, layer=name) for name in names}


@pytest.fixture(scope="module")
def addresses(city) -> pd.DataFrame:
    return pd.read_csv(city.addresses_csv, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def nbs() -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / "divisions_nbs_2023.csv", dtype=str)


def _by_code(df: pd.DataFrame, code_col: str) -> dict[str, shapely.Geometry]:
    return dict(zip(df[code_col], df.geometry))


def _assert_tiles(whole: shapely.Geometry, parts: list[shapely.Geometry], what: str) -> None:
    union = shapely.union_all(parts)
    overlap = sum(p.area for p in parts) - union.area
    gap = whole.symmetric_difference(union).area
    assert overlap < TOLERANCE * whole.area, f"{what}: overlap {overlap / whole.area:.2e}"
    assert gap < TOLERANCE * whole.area, f"{what}: gap {gap / whole.area:.2e}"


# --- outputs -------------------------------------------------------------------------------------
def test_should_write_gpkg_csv_and_manifest(city):
    assert city.gpkg.name == "city.gpkg" and city.gpkg.exists()
    assert city.addresses_csv.name == "addresses.csv" and city.addresses_csv.exists()
    manifest = json.loads(city.manifest.read_text(encoding="utf-8"))
    assert manifest["seed"] == SEED
    assert manifest["addresses_requested"] == N_ADDRESSES
    assert manifest["files"]["addresses.csv"]["rows"] == N_ADDRESSES
    assert manifest["files"]["addresses.csv"]["sha256"] == city.addresses_sha256
    assert manifest["generator_version"]
    assert set(manifest["files"]["city.gpkg"]["layers"]) == {
        "counties", "townships", "villages", "place_names", "facilities", "heritage"}
    assert city.counts["addresses"] == N_ADDRESSES


def test_should_write_csv_with_the_exact_header_and_unix_line_ends(city):
    raw = city.addresses_csv.read_bytes()
    assert b"\r" not in raw
    assert raw.decode("utf-8").split("\n", 1)[0] == ",".join(COLUMNS)
    assert raw.endswith(b"\n") and raw.count(b"\n") == N_ADDRESSES + 1


def test_should_write_every_layer_in_cgcs2000(city):
    for name, _ in pyogrio.list_layers(city.gpkg):
        assert pyogrio.read_info(city.gpkg, layer=name)["crs"] == "EPSG:4490"


# --- real divisions ---------------------------------------------------------------------------------
def test_should_keep_the_real_counties_townships_and_villages(layers, nbs):
    for layer, level, code_col in (("counties", "county", "code"), ("townships", "township", "nbs_code"),
                                   ("villages", "village", "code")):
        ref = nbs[nbs.level == level]
        got = layers[layer]
        assert len(got) == len(ref) == {"county": 5, "township": 72, "village": 1301}[level]
        assert dict(zip(got[code_col], got["name"])) == dict(zip(ref.code, ref.name))
    v = layers["villages"]
    assert dict(zip(v.code, v.township_code)) == dict(zip(nbs[nbs.level == "village"].code,
                                                          nbs[nbs.level == "village"].parent_code))


def test_should_carry_both_township_code_authorities(layers):
    with (REFERENCE_DIR / "township_code_crosswalk.csv").open(encoding="utf-8") as fh:
        cross = {r["nbs2023_code"]: r["mca2025_code"] for r in csv.DictReader(fh)}
    t = layers["townships"]
    assert dict(zip(t.nbs_code, t.mca_code)) == cross
    assert (t.nbs_code != t.mca_code).sum() == 24


def test_should_convert_county_polygons_from_gcj02_to_cgcs2000(layers):
    ref = pyogrio.read_dataframe(REFERENCE_DIR / "huzhou_counties_wgs84.geojson")
    ref = ref[ref.level == "county"]
    expected = dict(zip(ref.code.astype(str), ref.geometry))
    for code, geom in _by_code(layers["counties"], "code").items():
        assert shapely.hausdorff_distance(geom, expected[code]) < 3e-5  # ~3 m


# --- tilings ------------------------------------------------------------------------------------
def test_should_tile_each_county_without_gaps_or_overlaps(layers):
    towns = layers["townships"]
    for code, county in _by_code(layers["counties"], "code").items():
        _assert_tiles(county, list(towns[towns.county_code == code].geometry), f"county {code}")


def test_should_tile_each_township_with_its_villages(layers):
    villages = layers["villages"]
    for code, town in _by_code(layers["townships"], "nbs_code").items():
        _assert_tiles(town, list(villages[villages.township_code == code].geometry), f"township {code}")


def test_should_share_identical_edges_between_neighbouring_polygons(layers):
    for name in ("counties", "townships", "villages"):
        geoms = np.asarray(layers[name].geometry.values, dtype=object)
        assert shapely.is_valid(geoms).all(), name
        assert shapely.coverage_is_valid(geoms), f"{name}: neighbours do not share identical edges"


def test_should_keep_each_village_and_township_in_one_piece(layers, city):
    for name in ("villages", "townships"):
        parts = shapely.get_num_geometries(np.asarray(layers[name].geometry.values, dtype=object))
        assert (parts == 1).all(), f"{name} in several pieces: {(parts > 1).sum()}"
    assert json.loads(city.manifest.read_text(encoding="utf-8"))["disconnected_townships"] == []


def test_should_make_subdistricts_small_and_communities_smaller_than_villages(layers):
    t = layers["townships"]
    sub = t.nbs_code.str[6:9].astype(int) < 100
    area = shapely.area(np.asarray(t.geometry.values, dtype=object))
    assert np.median(area[sub]) < 0.5 * np.median(area[~sub])
    v = layers["villages"]
    community = v.code.str[9:].astype(int) < 200
    varea = shapely.area(np.asarray(v.geometry.values, dtype=object))
    assert np.median(varea[community]) < 0.6 * np.median(varea[~community])


# --- addresses ------------------------------------------------------------------------------------
def test_should_put_every_address_inside_the_polygon_of_its_division(addresses, layers):
    polys = _by_code(layers["villages"], "code")
    lon = addresses.lon.astype(float).to_numpy()
    lat = addresses.lat.astype(float).to_numpy()
    assert addresses.lon.str.fullmatch(r"1[12]\d\.\d{7}").all() and addresses.lat.str.fullmatch(r"3\d\.\d{7}").all()
    for code, idx in addresses.groupby("division_code").indices.items():
        inside = shapely.contains_xy(polys[code], lon[idx], lat[idx])
        assert inside.all(), f"{(~inside).sum()} addresses of {code} fall outside it"


def test_should_keep_natural_keys_unique(addresses):
    assert len(addresses) == N_ADDRESSES
    assert not addresses.duplicated(KEY).any()


def test_should_mix_street_doors_compound_flats_and_natural_village_doors(addresses):
    street = addresses.street != ""
    compound = addresses.compound != ""
    natural = addresses.natural_village != ""
    assert (street.astype(int) + compound.astype(int) + natural.astype(int) == 1).all()
    assert abs(street.mean() - 0.35) < 0.01 and abs(compound.mean() - 0.50) < 0.01 and abs(natural.mean() - 0.15) < 0.01
    s = addresses[street]
    assert s.number.str.fullmatch(r"\d+号|\d+-\d+号|附\d+号|\d+[甲乙]号").all()
    assert (s[["group", "building", "unit", "room"]] == "").all().all()
    c = addresses[compound]
    assert c.building.str.fullmatch(r"\d+幢").all() and c.unit.str.fullmatch(r"[1-4]单元").all()
    floors = c.room.str.extract(r"^(\d+)(\d\d)室$").astype(int)
    assert floors[0].between(1, 18).all() and floors[1].between(1, 4).all()
    assert (c[["street", "number", "group"]] == "").all().all()
    n = addresses[natural]
    assert n.group.str.fullmatch(r"\d+组").all() and n.number.str.fullmatch(r"\d+号").all()


def test_should_put_compounds_in_communities_and_natural_villages_in_villages(addresses):
    suffix = addresses.division_code.str[9:].astype(int)
    assert (suffix[addresses.natural_village != ""].between(200, 399)).all()
    assert (~suffix[addresses.compound != ""].between(200, 399)).all()


def test_should_put_odd_and_even_doors_on_opposite_sides_of_the_street(addresses, layers):
    roads = layers["place_names"][layers["place_names"].category == "road"]
    lines = {(r.county_code, r.name): r.geometry for r in roads.itertuples()}
    plain = addresses[(addresses.street != "") & addresses.number.str.fullmatch(r"\d+号")]
    checked = 0
    for row in plain.itertuples():
        line = lines[(row.division_code[:6], row.street)]
        p = shapely.Point(float(row.lon), float(row.lat))
        d = line.project(p)
        a, b = line.interpolate(max(d - 1e-5, 0)), line.interpolate(min(d + 1e-5, line.length))
        cross = (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x)
        odd = int(row.number[:-1]) % 2 == 1
        assert (cross > 0) == odd, f"{row.street}{row.number} on the wrong side"
        checked += 1
    assert checked > 500


def test_should_contain_the_spec_anchors(addresses):
    a = addresses
    aishan = a[(a.division_code.str[:9] == "330502003") & (a.street == "人民路")]
    assert {"123号", "12-1号"} <= set(aishan.number)
    renmin_123 = a[(a.street == "人民路") & (a.number == "123号")]
    assert {"330502", "330503", "330522"} <= set(renmin_123.division_code.str[:6])
    flat = a[(a.division_code.str[:6] == "330502") & (a.compound == "凤凰小区") & (a.building == "5幢")
             & (a.unit == "2单元") & (a.room == "301室")]
    assert len(flat) == 1
    digang = a[(a.division_code == "330503106202") & (a.natural_village != "")]
    assert len(digang) >= 1


# --- place names ----------------------------------------------------------------------------------
def test_should_name_streets_plausibly_and_uniquely_within_a_county(layers):
    pn = layers["place_names"]
    roads = pn[pn.category == "road"]
    assert roads.name.str.contains(r"(?:路|街|大道|巷|弄)$").all()
    assert not roads.duplicated(["county_code", "name"]).any()
    assert roads[roads.name == "人民路"].county_code.nunique() >= 3
    assert (roads.groupby("name").county_code.nunique() > 1).sum() >= 10
    assert set(roads.geometry.geom_type) == {"LineString"}
    renamed = roads[roads.former_name.notna()]
    assert 0.05 <= len(renamed) / len(roads) <= 0.10
    assert renamed.former_until.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert roads.village_code.isna().all()


def test_should_name_compounds_and_natural_villages_inside_their_village(layers):
    pn = layers["place_names"]
    polys = _by_code(layers["villages"], "code")
    comp = pn[pn.category == "compound"]
    nat = pn[pn.category == "natural_village"]
    assert comp.name.str.contains(r"(?:小区|苑|花园|新村|公寓|村)$").all()
    assert len(nat) > 1000 and len(comp) > 500
    for df in (comp, nat):
        assert all(polys[v].contains(g) for v, g in zip(df.village_code, df.geometry))
    assert set(pn.category) >= {"road", "compound", "natural_village", "bridge", "river", "hill"}
    assert pn.origin.str.len().gt(0).all()


# --- facilities and heritage ---------------------------------------------------------------------------
def test_should_have_exact_facility_counts(layers):
    f = layers["facilities"]
    assert f.category.value_counts().to_dict() == {
        "居家养老服务照料中心": 1182, "幸福邻里中心": 265, "儿童之家": 260,
        "社会工作站": 72, "集中治丧点": 65, "婚姻登记处": 5}
    assert f[f.category == "社会工作站"].township_code.nunique() == 72
    assert set(f[f.category == "婚姻登记处"].name) == {"吴兴区婚姻登记处", "南浔区婚姻登记处", "德清县婚姻登记处",
                                                   "长兴县婚姻登记处", "安吉县婚姻登记处"}
    assert not f.name.duplicated().any()
    assert f.phone.str.fullmatch(r"0572-\d{7}").all()


def test_should_place_facilities_inside_their_village(layers):
    polys = _by_code(layers["villages"], "code")
    f = layers["facilities"]
    assert all(polys[v].contains(g) for v, g in zip(f.village_code, f.geometry))
    care = f[f.category == "居家养老服务照料中心"]
    assert care.name.str.endswith("居家养老服务照料中心").all()


def test_should_list_provincial_ancient_towns_and_villages(layers):
    h = layers["heritage"]
    assert 40 <= len(h) <= 80
    assert set(h.level) <= {"county", "city", "province"}
    prov = h[h.level == "province"]
    assert {"南浔", "双林", "菱湖", "新市"} <= set(prov[prov.category == "千年古镇"].name)
    digang = prov[(prov.category == "千年古村落") & (prov.name == "荻港")]
    assert list(digang.village_code) == ["330503106202"] and list(digang.township_code) == ["330503106"]
    polys = _by_code(layers["villages"], "code")
    assert all(polys[v].contains(g) for v, g in zip(h.village_code, h.geometry))
    assert (h.pinyin_name.fillna("") == "").all()  # the loader computes it
    assert h.origin.str.len().gt(0).all() and h.history.str.len().gt(0).all()


# --- determinism and interface --------------------------------------------------------------------------
def test_should_give_identical_outputs_for_the_same_seed_and_different_for_another(city, layers, tmp_path, capfd):
    calls: list[tuple[str, int, int]] = []
    again = generate_city(tmp_path / "again", addresses=N_ADDRESSES, seed=SEED, progress=lambda *a: calls.append(a))
    out, err = capfd.readouterr()
    assert out == ""  # logging only, never print
    assert {"divisions", "addresses", "write", "gpkg"} <= {c[0] for c in calls}
    assert again.addresses_csv.read_bytes() == city.addresses_csv.read_bytes()
    assert again.manifest.read_bytes() == city.manifest.read_bytes()
    for name, df in layers.items():
        other = pyogrio.read_dataframe(again.gpkg, layer=name)
        pd.testing.assert_frame_equal(df.drop(columns="geometry"), other.drop(columns="geometry"))
        assert shapely.equals_exact(np.asarray(df.geometry.values, dtype=object),
                                    np.asarray(other.geometry.values, dtype=object), tolerance=0).all()
    different = generate_city(tmp_path / "other", addresses=N_ADDRESSES, seed=SEED + 1)
    assert different.addresses_sha256 != city.addresses_sha256
    assert different.manifest.read_bytes() != city.manifest.read_bytes()


def test_should_refuse_a_count_too_small_for_the_anchors(tmp_path):
    with pytest.raises(ValueError, match="at least"):
        generate_city(tmp_path, addresses=10, seed=1)
