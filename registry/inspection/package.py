"""A field package as the domain sees it: layers of features (attributes + WKB in CGCS2000),
whatever file format they came from, and the problems found in it.

The files (GeoPackage, Shapefile folder, GeoJSON) are read by registry/inspection/files.py and
written by loaders/field_package.py; validation, diff and apply never open a file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Feature:
    fid: int  # 1-based position in its layer, as the editing tool shows it
    attrs: dict[str, Any]
    wkb: bytes | None = None  # CGCS2000 (EPSG:4490)

    def get(self, name: str) -> Any:
        """The attribute with blanks (None, '', whitespace, NaN) read as None."""
        v = self.attrs.get(name)
        if v is None:
            return None
        if isinstance(v, float) and v != v:
            return None
        if isinstance(v, str):
            v = v.strip()
            return v or None
        return v


@dataclass(frozen=True)
class Problem:
    layer: str | None
    feature: str | None  # "#12 (3305020011001Q)" — position and key
    rule: str
    message: str  # Chinese / English

    def as_row(self) -> dict[str, str]:
        return {"layer": self.layer or "", "feature": self.feature or "", "rule": self.rule,
                "message": self.message}


@dataclass
class PackageData:
    source: str
    layers: dict[str, list[Feature]] = field(default_factory=dict)
    crs: str | None = None  # the CRS the file declared (geometries are already CGCS2000)
    checksum: str | None = None
    info: dict[str, str] = field(default_factory=dict)  # package_info key -> value
    problems: list[Problem] = field(default_factory=list)  # found while reading

    def layer(self, name: str) -> list[Feature]:
        return self.layers.get(name, [])


def feature_label(f: Feature, key: Any = None) -> str:
    return f"#{f.fid}" + (f" ({key})" if key not in (None, "") else "")
