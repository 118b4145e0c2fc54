"""Boundary joint inspections (界线联合检查): rounds and records, the field package out and back
(validation, diff against the registry, a proposed change set) and applying it.

A package file is read back by `files.read_package` (pyogrio, no GeoPandas) and written by the
loaders (loaders/field_package.py); the rest of this package sees layers of features with WKB
geometries (registry.inspection.package) and does its geometry in PostGIS.
"""
from registry.inspection.diff import LoadResult, diff_counts, propose_package
from registry.inspection.export import export_package, scope_line_ids
from registry.inspection.package import Feature, PackageData, Problem
from registry.inspection.rounds import create_round, get_round, list_records, list_rounds
from registry.inspection.validate import Tolerances, validate_package

__all__ = [
    "Feature", "LoadResult", "PackageData", "Problem", "Tolerances", "create_round", "diff_counts",
    "export_package", "get_round", "list_records", "list_rounds", "propose_package", "scope_line_ids",
    "validate_package",
]
