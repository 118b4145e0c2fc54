"""Deterministic synthetic Huzhou: real divisions, synthetic polygons, streets and addresses.

    from data.generate import generate_city
    result = generate_city(Path("out"), addresses=50_000, seed=1)

writes ``city.gpkg`` (layers counties, townships, villages, place_names, facilities,
heritage; EPSG:4490), ``addresses.csv`` and ``manifest.json`` into the folder. The geography
(polygons, streets, compounds, natural villages, facilities, heritage) depends only on the
seed; the addresses on the seed and the requested count. Same seed and count -> identical
CSV and manifest bytes and identical layer contents.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data.generate import writer
from data.generate.addresses import COMPOUND, MIN_ADDRESSES, NATURAL, STREET, build_addresses
from data.generate.divisions import build_divisions
from data.generate.facilities import build_facilities
from data.generate.heritage import build_heritage
from data.generate.places import build_compounds, build_features, build_natural_villages, compound_point_deg, natural_point_deg
from data.generate.reference import county_polygons_cgcs2000, load_reference
from data.generate.streets import build_streets, street_lines_deg

__all__ = ["GENERATOR_VERSION", "GeneratedCity", "generate_city"]

GENERATOR_VERSION = "1.0.0"
log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
# independent random streams, so a change in one stage does not reshuffle the others
_STREAMS = {"divisions": 1, "streets": 2, "places": 3, "facilities": 4, "heritage": 5, "addresses": 6}


@dataclass
class GeneratedCity:
    out_dir: Path
    gpkg: Path
    addresses_csv: Path
    manifest: Path
    seed: int
    addresses: int
    addresses_sha256: str
    counts: dict[str, int] = field(default_factory=dict)


def _rng(seed: int, stage: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), _STREAMS[stage]])


def generate_city(out_dir: Path, *, addresses: int = 50_000, seed: int = 1, progress: Progress | None = None) -> GeneratedCity:
    if addresses < MIN_ADDRESSES:
        raise ValueError(f"addresses must be at least {MIN_ADDRESSES} (to hold the spec anchors), got {addresses}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda stage, done, total: None)
    t0 = time.perf_counter()

    def stage(name: str, report: bool = True):
        if report:
            say(name, 1, 1)
        log.info("generate: %s done at %.1fs", name, time.perf_counter() - t0)

    ref = load_reference()
    counties = county_polygons_cgcs2000(ref)
    say("divisions", 0, 1)
    divs = build_divisions(ref, counties, _rng(seed, "divisions"))
    stage("divisions")
    streets = build_streets(ref, divs, _rng(seed, "streets"))
    stage("streets")
    rng_places = _rng(seed, "places")
    compounds = build_compounds(ref, divs, rng_places)
    naturals = build_natural_villages(ref, divs, rng_places)
    features = build_features(ref, divs, rng_places)
    stage("places")
    facilities = build_facilities(ref, divs, streets, naturals, _rng(seed, "facilities"))
    stage("facilities")
    heritage = build_heritage(ref, divs, _rng(seed, "heritage"))
    stage("heritage")
    table = build_addresses(ref, divs, streets, compounds, naturals, addresses, _rng(seed, "addresses"), progress)
    stage("addresses", report=False)

    csv_path = out_dir / "addresses.csv"
    sha = writer.write_addresses_csv(csv_path, table, [v.code for v in ref.villages], [s.name for s in streets],
                                     [c.name for c in compounds], [n.name for n in naturals], progress)
    log.info("generate: addresses.csv written at %.1fs", time.perf_counter() - t0)
    layers = _layers(ref, divs, streets, compounds, naturals, features, facilities, heritage)
    gpkg_path = out_dir / "city.gpkg"
    layer_info = writer.write_gpkg(gpkg_path, layers, progress)
    stage("gpkg", report=False)

    kinds = Counter(table.kind.tolist())
    address_counts = {"street": kinds.get(STREET, 0), "compound": kinds.get(COMPOUND, 0),
                      "natural_village": kinds.get(NATURAL, 0)}
    manifest = {
        "generator": "data.generate",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "addresses_requested": int(addresses),
        "crs": writer.CRS,
        "synthetic": "real division names and codes and real county outlines; everything else is synthetic",
        "files": {
            "addresses.csv": {"rows": len(table), "sha256": sha, "columns": list(writer.CSV_COLUMNS),
                              "kinds": address_counts},
            "city.gpkg": {"layers": layer_info},
        },
        "place_names": dict(sorted(Counter(layers["place_names"]["category"]).items())),
        "facilities": dict(sorted(Counter(layers["facilities"]["category"]).items())),
        "disconnected_townships": divs.disconnected_townships,
    }
    manifest_path = out_dir / "manifest.json"
    writer.write_manifest(manifest_path, manifest)
    counts = {name: info["rows"] for name, info in layer_info.items()}
    counts["addresses"] = len(table)
    counts.update({f"addresses.{k}": v for k, v in address_counts.items()})
    log.info("generate: done in %.1fs: %s", time.perf_counter() - t0, counts)
    return GeneratedCity(out_dir, gpkg_path, csv_path, manifest_path, int(seed), int(addresses), sha, counts)


def _layers(ref, divs, streets, compounds, naturals, features, facilities, heritage):
    towns = {t.nbs_code: t for t in ref.townships}
    layers = {
        "counties": writer.frame([{"code": c.code, "name": c.name} for c in ref.counties],
                                 [divs.county_geoms[c.code] for c in ref.counties], multi=True),
        "townships": writer.frame([{"nbs_code": t.nbs_code, "mca_code": t.mca_code, "name": t.name,
                                    "county_code": t.county_code} for t in ref.townships], divs.township_geoms, multi=True),
        "villages": writer.frame([{"code": v.code, "name": v.name, "township_code": v.township_code} for v in ref.villages],
                                 divs.village_geoms, multi=True),
    }
    rows, geoms = [], []

    def place(name, category, county, township, village, origin, geom, former=None, until=None):
        rows.append({"name": name, "category": category, "county_code": county, "township_code": township,
                     "village_code": village, "former_name": former, "former_until": until, "origin": origin})
        geoms.append(geom)

    for s, line in zip(streets, street_lines_deg(streets)):
        place(s.name, "road", s.county_code, s.township_code, None, s.origin, line, s.former_name, s.former_until)
    for c in compounds:
        v = ref.villages[c.village]
        place(c.name, "compound", v.county_code, v.township_code, v.code, c.origin, compound_point_deg(c))
    for n in naturals:
        v = ref.villages[n.village]
        place(n.name, "natural_village", v.county_code, v.township_code, v.code, n.origin, natural_point_deg(n))
    for f in features:
        place(f.name, f.category, f.county_code, f.township_code, f.village_code, f.origin, f.geometry)
    layers["place_names"] = writer.frame(rows, geoms)
    fac_cols = ("category", "name", "county_code", "township_code", "village_code", "address", "phone")
    layers["facilities"] = writer.frame([{k: getattr(f, k) for k in fac_cols} for f in facilities],
                                        [f.geometry for f in facilities])
    her_cols = ("name", "level", "category", "county_code", "township_code", "village_code", "pinyin_name", "origin",
                "meaning", "history", "former_names", "listed_year", "synthetic")
    layers["heritage"] = writer.frame([{k: getattr(h, k) for k in her_cols} for h in heritage],
                                      [h.geometry for h in heritage])
    assert all(t in towns for t in layers["villages"]["township_code"])
    return layers
