"""In-memory directories of divisions and place names, read once per load.

The registry holds ~1,400 divisions and tens of thousands of place names, against up to millions
of address rows that name them. Reading both once and resolving each distinct value in a dict
(memoised per load) is cheaper than a join per row, and it gives the loader the names it needs
to compose the standard address text (`registry.text.compose_address`) while it streams.
The heavy, whole-file checks (containment, duplicates, matching against the registry) are done
set-based in SQL on the staged rows.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from registry.loading.reasons import CATEGORY_ZH
from registry.text import fold_village_suffix, normalize

LEVEL_ZH = {"province": "省", "city": "市", "county": "区县", "township": "乡镇街道", "village": "村社区"}
_DIGITS = re.compile(r"^\d+$")


class Issue(Exception):
    """A row-level fault found while resolving: (reason code, message parameters)."""

    def __init__(self, reason: str, /, **params: Any) -> None:
        super().__init__(reason)
        self.code = reason
        self.params = params


@dataclass(frozen=True)
class DivisionInfo:
    id: int
    level: str
    name: str
    full_name: str
    parent_id: int | None
    nbs_code: str | None
    mca_code: str | None
    status: str
    county_id: int | None = None
    county_name: str | None = None
    township_id: int | None = None
    township_name: str | None = None
    has_geom: bool = False

    @property
    def code(self) -> str:
        return self.nbs_code or self.mca_code or str(self.id)

    @property
    def label(self) -> str:
        return f"{self.name}（{self.code}）"


def clean_name(value: str) -> str:
    """The form a name is stored in: NFKC (full-width to half-width), no whitespace."""
    return "".join(unicodedata.normalize("NFKC", value).split())


AUTHORITIES = ("nbs2023", "mca2025")


class DivisionDirectory:
    """Every division with its codes under both authorities and its former codes.

    A code can name different divisions under the two authorities (NBS 330502007 is 康山街道,
    MCA 330502007 is 湖东街道), so a code resolves to candidates, narrowed by the authority the
    file uses (`authority`, when known), then by the row's context (the village's township, the
    county); a code still naming two divisions is refused as ambiguous, never guessed.
    """

    def __init__(self, rows: list[dict], codes: list[tuple[str, str, int]], authority: str | None = None) -> None:
        raw = {r["id"]: r for r in rows}
        self.authority = authority
        self.by_id: dict[int, DivisionInfo] = {}
        for r in rows:
            county = township = None
            cur = r
            while cur is not None:
                if cur["level"] == "county":
                    county = cur
                elif cur["level"] == "township":
                    township = cur
                cur = raw.get(cur["parent_id"])
            self.by_id[r["id"]] = DivisionInfo(
                id=r["id"], level=r["level"], name=r["name"], full_name=r["full_name"], parent_id=r["parent_id"],
                nbs_code=r["nbs_code"], mca_code=r["mca_code"], status=r["status"],
                county_id=county["id"] if county else None, county_name=county["name"] if county else None,
                township_id=township["id"] if township else None,
                township_name=township["name"] if township else None, has_geom=r["has_geom"],
            )
        # code -> {division id: {authorities}}; current codes and every former code
        self._codes: dict[str, dict[int, set[str]]] = {}
        for code, auth, division_id in codes:
            self._codes.setdefault(code, {}).setdefault(division_id, set()).add(auth)
        for info in self.by_id.values():
            for code, auth in ((info.nbs_code, "nbs2023"), (info.mca_code, "mca2025")):
                if code:
                    self._codes.setdefault(code, {}).setdefault(info.id, set()).add(auth)
        self._parent_codes: dict[str, set[int]] = {}  # see `load(pending=)`
        self._by_name: dict[tuple[str, str], list[int]] | None = None  # built on the first name lookup
        self._code_cache: dict[tuple, Any] = {}
        self._name_cache: dict[tuple, Any] = {}

    @classmethod
    def load(cls, conn: Connection, authority: str | None = None,
             pending: tuple[tuple[str, str, int], ...] = ()) -> "DivisionDirectory":
        """`pending`: (code, authority, division id) resolved as if they were former codes, for files
        that name a division by the code it only gets from a pending adjustment (nothing is written);
        authority "parent": a township code a village's present township only stands for in the
        file's parent check (the township the village is still to be transferred to)."""
        rows = conn.execute(text(
            "SELECT id, level, name, full_name, parent_id, nbs_code, mca_code, status, geom IS NOT NULL AS has_geom "
            "FROM divisions"
        )).mappings().all()
        codes = conn.execute(text("SELECT code, authority, division_id FROM division_codes")).all()
        directory = cls([dict(r) for r in rows], [(c, a, d) for c, a, d in codes]
                        + [p for p in pending if p[1] != "parent"], authority)
        for code, _, division_id in (p for p in pending if p[1] == "parent"):
            directory._parent_codes.setdefault(code, set()).add(division_id)
        return directory

    def get(self, division_id: int) -> DivisionInfo:
        return self.by_id[division_id]

    # -- by code --------------------------------------------------------------------------------
    def by_code_or_issue(self, code: str, *, levels: tuple[str, ...] = ("village",), authority: str | None = None,
                         within: int | None = None) -> DivisionInfo:
        """The division a code names (NBS 2023, MCA 2025 or a former code); Issue otherwise.
        `authority` narrows to one authority's codes (else the load's); `within` to the
        divisions under that county or township."""
        key = (code, levels, authority, within)
        hit = self._code_cache.get(key)
        if hit is None:
            hit = self._code_cache[key] = self._resolve_code(code, levels, authority or self.authority, within)
        if isinstance(hit, Issue):
            raise hit.with_traceback(None)
        return hit

    def candidates(self, code: str) -> set[int]:
        c = self.clean_code(code) or ""
        return set(self._codes.get(c, {})) | self._parent_codes.get(c, set())

    @staticmethod
    def clean_code(code: str) -> str | None:
        c = clean_name(code)
        if c.endswith(".0") and _DIGITS.match(c[:-2]):  # a code read as a number by a spreadsheet
            c = c[:-2]
        if not _DIGITS.match(c) or len(c) not in (6, 9, 12):
            return None
        return c

    def _resolve_code(self, code: str, levels: tuple[str, ...], authority: str | None,
                      within: int | None) -> DivisionInfo | Issue:
        c = self.clean_code(code)
        if c is None:
            return Issue("bad_division_code", value=code)
        found = self._codes.get(c)
        if not found:
            return Issue("unknown_division", what=c)
        ids = list(found)
        if len(ids) > 1 and authority:
            # the authority's current code first, else a former code of any authority
            current = [i for i in ids if authority in found[i]]
            ids = current or ids
        if len(ids) > 1:
            ids = [i for i in ids if self.by_id[i].level in levels] or ids
        if len(ids) > 1 and within is not None:
            ids = [i for i in ids if within in (self.by_id[i].county_id, self.by_id[i].township_id, i)] or ids
        if len(ids) > 1:
            active = [i for i in ids if self.by_id[i].status == "active"]
            ids = active if len(active) == 1 else ids
        if len(ids) > 1:
            names = "、".join(f"{self.by_id[i].name}（{'/'.join(sorted(found[i]))}）" for i in ids)
            return Issue("ambiguous_division", what=c, candidates=names)
        info = self.by_id[ids[0]]
        if info.status != "active":
            return Issue("abolished_division", what=info.label)
        if info.level not in levels:
            return Issue("division_level", what=info.label, level=LEVEL_ZH.get(info.level, info.level))
        return info

    # -- by name ----------------------------------------------------------------------------------
    def by_names_or_issue(self, county: str | None, township: str | None, village: str | None,
                          *, level: str = "village") -> DivisionInfo:
        key = (county, township, village, level)
        hit = self._name_cache.get(key)
        if hit is None:
            hit = self._name_cache[key] = self._resolve_names(county, township, village, level)
        if isinstance(hit, Issue):
            raise hit.with_traceback(None)
        return hit

    def _candidates(self, level: str, name: str) -> list[DivisionInfo]:
        if self._by_name is None:
            self._by_name = {}
            for info in self.by_id.values():
                for variant in {info.name, info.full_name, fold_village_suffix(info.full_name)}:
                    self._by_name.setdefault((info.level, normalize(variant)), []).append(info.id)
        norm = normalize(name)
        found = self._by_name.get((level, norm)) or self._by_name.get((level, normalize(fold_village_suffix(name))))
        return [self.by_id[i] for i in found or ()]

    def _resolve_names(self, county: str | None, township: str | None, village: str | None,
                       level: str) -> DivisionInfo | Issue:
        target = {"village": village, "township": township, "county": county}[level]
        if not target:
            return Issue("missing_field", field={"village": "village / 所属社区", "township": "township",
                                                  "county": "county"}[level])
        what = "".join(x for x in (county, township, village) if x)
        candidates = [c for c in self._candidates(level, target) if c.status == "active"]
        if county and level != "county":
            counties = {c.id for c in self._candidates("county", county)}
            if not counties:
                return Issue("unknown_division", what=county)
            candidates = [c for c in candidates if c.county_id in counties]
        if township and level == "village":
            townships = {c.id for c in self._candidates("township", township)}
            if not townships:
                return Issue("unknown_division", what=township)
            candidates = [c for c in candidates if c.township_id in townships]
        if not candidates:
            return Issue("unknown_division", what=what)
        if len(candidates) > 1:
            return Issue("ambiguous_division", what=what,
                         candidates="、".join(f"{c.township_name}{c.name}（{c.code}）" for c in candidates[:5]))
        return candidates[0]


@dataclass(frozen=True)
class PlaceRef:
    id: int
    name: str  # the registered (current) name
    category: str
    division_id: int
    township_id: int | None
    county_id: int
    alias_of: str | None = None  # set when found through a former name or alias: the name used


class PlaceDirectory:
    """Place names by (county, name) for roads and by (village or township, name) otherwise,
    with their former names and aliases."""

    ROAD = "road"
    LOCAL = ("compound", "natural_village")

    def __init__(self, divisions: DivisionDirectory, rows: list[tuple], aliases: list[tuple]) -> None:
        self.divisions = divisions
        self._cache: dict[tuple, Any] = {}
        self._pending: dict[tuple, PlaceRef] = {}
        self.created: list[dict] = []
        self._entries: list[tuple[PlaceRef, str]] = []
        by_id: dict[int, PlaceRef] = {}
        for pid, category, name, division_id, county_id in rows:
            ref = self._ref(pid, category, name, division_id, county_id)
            by_id[pid] = ref
            self._entries.append((ref, name))
        for place_id, alias in aliases:
            ref = by_id.get(place_id)
            if ref is not None and alias != ref.name:
                self._entries.append((PlaceRef(ref.id, ref.name, ref.category, ref.division_id, ref.township_id,
                                               ref.county_id, alias_of=alias), alias))
        # Names are looked up as stored (clean_name) first; the index on the fully normalized
        # form (normalize(): simplified, numerals, variants …) is built on the first miss.
        self._exact = self._index(clean_name)
        self._normalized: tuple[dict, dict] | None = None

    def _index(self, key) -> tuple[dict, dict]:
        roads: dict[tuple[int, str], list[PlaceRef]] = {}
        local: dict[tuple[int, str, str], list[PlaceRef]] = {}
        for ref, name in self._entries:
            k = key(name)
            if ref.category == self.ROAD:
                roads.setdefault((ref.county_id, k), []).append(ref)
            elif ref.category in self.LOCAL:
                local.setdefault((ref.division_id, ref.category, k), []).append(ref)
        return roads, local

    def _ref(self, pid: int, category: str, name: str, division_id: int, county_id: int) -> PlaceRef:
        div = self.divisions.by_id.get(division_id)
        township_id = None
        if div is not None:
            township_id = div.id if div.level == "township" else div.township_id
        return PlaceRef(pid, name, category, division_id, township_id, county_id)

    @classmethod
    def load(cls, conn: Connection, divisions: DivisionDirectory) -> "PlaceDirectory":
        rows = conn.execute(text(
            "SELECT id, category, name, division_id, county_id FROM place_names "
            "WHERE category IN ('road', 'compound', 'natural_village') AND status <> 'retired'"
        )).all()
        aliases = conn.execute(text(
            "SELECT a.place_name_id, a.name FROM place_name_aliases a JOIN place_names p ON p.id = a.place_name_id "
            "WHERE p.category IN ('road', 'compound', 'natural_village') AND p.status <> 'retired'"
        )).all()
        return cls(divisions, [tuple(r) for r in rows], [tuple(a) for a in aliases])

    @staticmethod
    def _pick(found: list[PlaceRef], township_id: int | None) -> list[PlaceRef]:
        current = [r for r in found if r.alias_of is None] or found
        if len(current) > 1 and township_id is not None:
            here = [r for r in current if r.township_id == township_id]
            if here:
                current = here
        unique = {r.id: r for r in current}
        return list(unique.values())

    def resolve(self, category: str, name: str, village: DivisionInfo, *, create: bool) -> PlaceRef:
        """The place a row names, searched in the row's county (roads) or in its village then
        its township (compounds, natural villages). Unknown: Issue, or a pending new place."""
        key = (category, name, village.id)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._resolve(category, name, village, create)
        if isinstance(hit, Issue):
            raise hit.with_traceback(None)
        return hit

    def _find(self, index: tuple[dict, dict], category: str, key: str, village: DivisionInfo) -> list[PlaceRef]:
        roads, local = index
        if category == self.ROAD:
            return roads.get((village.county_id, key), [])
        found = local.get((village.id, category, key), [])
        if not found and village.township_id is not None:
            found = local.get((village.township_id, category, key), [])
        return found

    def _other_kind(self, category: str, name: str, village: DivisionInfo) -> str | None:
        """The kind (road, compound, natural_village) under which the name is registered where the
        row would look for it, when that is not the kind the row names."""
        if self._normalized is None:
            self._normalized = self._index(normalize)
        for index, key in ((self._exact, clean_name(name)), (self._normalized, normalize(name))):
            for other in (self.ROAD, *self.LOCAL):
                if other != category and self._find(index, other, key, village):
                    return other
        return None

    def _resolve(self, category: str, name: str, village: DivisionInfo, create: bool) -> PlaceRef | Issue:
        found = self._find(self._exact, category, clean_name(name), village)
        if not found:
            if self._normalized is None:
                self._normalized = self._index(normalize)
            found = self._find(self._normalized, category, normalize(name), village)
        norm = normalize(name) if not found else None
        scope = village.county_name or "区县" if category == self.ROAD else f"{village.township_name or ''}{village.name}"
        picked = self._pick(found, village.township_id)
        if len(picked) == 1:
            return picked[0]
        label = CATEGORY_ZH.get(category, category)
        if len(picked) > 1:
            return Issue("ambiguous_place", category=category, category_zh=label, name=name, scope=scope,
                         count=len(picked))
        other = self._other_kind(category, name, village)
        if other is not None:
            # the name is registered under another kind: --create-places would register it twice
            return Issue("place_other_kind", category=category, category_zh=label, name=name, scope=scope,
                         other=other, other_zh=CATEGORY_ZH.get(other, other))
        if not create:
            return Issue("unknown_place", category=category, category_zh=label, name=name, scope=scope)
        # A new place, registered once per load in the same change set; a negative placeholder
        # id travels through the staging table until the real id is known.
        division_id = village.township_id if category == self.ROAD else village.id
        pkey = (category, norm or normalize(name), village.county_id if category == self.ROAD else village.id)
        ref = self._pending.get(pkey)
        if ref is None:
            ref = PlaceRef(-(len(self._pending) + 1), clean_name(name), category, division_id or village.id,
                           village.township_id, village.county_id)
            self._pending[pkey] = ref
            self.created.append({"placeholder": ref.id, "category": category, "name": ref.name,
                                 "division_id": ref.division_id, "county_id": ref.county_id})
        return ref
