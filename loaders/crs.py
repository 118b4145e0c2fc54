"""Which coordinate reference system an input file is read in: the one given (`--crs`, the mapping
file, a .prj file next to a CSV) over the file's own; a file with neither is refused (guessing
wrong moves every point by hundreds of metres). What a CRS label may be, and the conversion to
CGCS2000 (EPSG:4490), live in registry/geo/crs.py.
"""
from __future__ import annotations

from registry.errors import FileError
from registry.geo.crs import Crs, parse_crs

__all__ = ["Crs", "parse_crs", "resolve_crs"]


def resolve_crs(declared: str | None, given: str | None, *, what: str) -> tuple[Crs, str | None]:
    """The CRS to use: the one given (option or mapping) wins over the file's own; a file with
    neither is refused. Returns (crs, a note when the given CRS overrides the file's)."""
    if given:
        crs = parse_crs(given)
        note = None
        if declared:
            file_crs = parse_crs(declared)
            if file_crs.label != crs.label:
                note = (f"按指定坐标系 {crs.label} 读取（文件声明 {file_crs.label}） / "
                        f"read as {crs.label} as given (the file declares {file_crs.label})")
        return crs, note
    if declared:
        return parse_crs(declared), None
    raise FileError("no_crs", f"{what} 没有坐标系信息，请用 --crs 指定（如 EPSG:4490、EPSG:4326、gcj02）",
                    f"{what} has no coordinate reference system; give one with --crs (e.g. EPSG:4490, EPSG:4326, gcj02)")
