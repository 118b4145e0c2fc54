"""The divisions covering a point, from memory: the active divisions' polygons (1,380 at the full
city) in a grid of their boxes, with `ST_Covers` semantics (a point on the boundary is covered), and every
division's row for the chain upwards — what `registry.search.reverse`'s statements read.

Exact, not approximate: GEOS (shapely) and PostGIS decide a point's side of an edge in different
arithmetic (robust orientation against plain doubles), so they can only disagree on points within
rounding error of a boundary. A point nearer than EDGE_DEG to the boundary of any polygon whose box
holds it, or in the box of a polygon GEOS calls invalid, is left to PostGIS (`covering` answers
None). Which of several divisions of one level covering a point is "the finest" is the statement's
scan order, not a rule: `registry.search.reverse` leaves that to PostGIS too.

An `Areas` is a snapshot: it is right only while the change notifications are followed
(`registry.serving.reverse.ReverseMemory` drops it on `divisions:…` and loads it again).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

# One statement: every division (any status: an address of an abolished village still names it,
# and a chain climbs through whatever parent_id says), the polygon of the active ones.
LOAD_SQL = """SELECT id, level, name, coalesce(mca_code, nbs_code), nbs_code, parent_id,
       CASE WHEN status = 'active' AND geom IS NOT NULL THEN ST_AsBinary(geom) END
FROM divisions ORDER BY id"""
EDGE_DEG = 1e-9  # ~0.1 mm: nearer a boundary than this, PostGIS decides (rounding is ~1e-14 degrees)
CELL_DEG = 0.0005  # ~50 m: most cells lie inside one village, away from every boundary
BOX_DEG = 0.01  # ~1 km: the squares of the polygons' bounding boxes (a point's candidates)
MAX_CHAIN = 16  # a parent_id cycle is the database's business: PostgreSQL's recursion would not end


@dataclass(frozen=True, slots=True)
class Division:
    id: int
    level: str
    name: str
    code: str | None  # coalesce(mca_code, nbs_code): the chain's code
    nbs_code: str | None  # the address's division code
    parent_id: int | None


class Areas:
    """The polygons and rows of one read of `divisions` (LOAD_SQL's rows)."""

    def __init__(self, rows, previous: "Areas | None" = None) -> None:
        """`previous`: the Areas these rows follow (after a division change): its cells are kept
        outside the boxes of the villages whose polygon changed."""
        self.divisions: dict[int, Division] = {}
        self._chains: dict[int, list | None] = {}
        ids, levels, wkbs = [], [], []
        for did, level, name, code, nbs_code, parent_id, wkb in rows:
            self.divisions[did] = Division(did, level, name, code, nbs_code, parent_id)
            if wkb is not None:
                ids.append(did)
                levels.append(level)
                wkbs.append(bytes(wkb))
        self.ids = np.array(ids, dtype=np.int64)
        self.levels = np.array(levels, dtype=object)
        self.village = self.levels == "village"
        self.wkbs = wkbs
        self.polygons = shapely.from_wkb(wkbs) if wkbs else np.empty(0, dtype=object)
        self.boundaries = shapely.boundary(self.polygons)
        self.bounds = tuple(float(v) for v in shapely.total_bounds(self.polygons)) if len(self.polygons) else None
        self.unsure = ~shapely.is_valid(self.polygons) if len(self.polygons) else np.empty(0, dtype=bool)
        shapely.prepare(self.polygons)
        shapely.prepare(self.boundaries)
        self._boxes = self._by_box()
        self._cells(previous)

    def _by_box(self) -> dict[tuple[int, int], np.ndarray]:
        """The polygons whose bounding box meets each square of BOX_DEG (their positions)."""
        out: dict[tuple[int, int], list[int]] = {}
        for k, (x0, y0, x1, y1) in enumerate(shapely.bounds(self.polygons).tolist()):
            for i in range(int(x0 // BOX_DEG), int(x1 // BOX_DEG) + 1):
                for j in range(int(y0 // BOX_DEG), int(y1 // BOX_DEG) + 1):
                    out.setdefault((i, j), []).append(k)
        return {key: np.array(v, dtype=np.int64) for key, v in out.items()}

    def _cells(self, previous: "Areas | None" = None) -> None:
        """The grid of cells wholly inside exactly one village and away from every village boundary
        (`inside`: that polygon's position, -1 otherwise): a point in one of those is answered
        without a geometric test. A cell is clean when no point of a village boundary lies in it or
        in its 8 neighbours (the boundaries sampled every CELL_DEG/4, so every boundary point is
        within CELL_DEG/8 of a sample), and then its centre tells which village holds all of it."""
        self.inside = np.empty(0, dtype=np.int32)
        self.x0 = self.y0 = 0.0
        self.nx = self.ny = 0
        villages = np.flatnonzero(self.village & ~self.unsure)
        if len(villages) == 0:
            return
        x0, y0, x1, y1 = shapely.total_bounds(self.polygons[villages])
        self.x0, self.y0 = float(x0) - CELL_DEG, float(y0) - CELL_DEG
        self.nx = int((x1 - self.x0) / CELL_DEG) + 2
        self.ny = int((y1 - self.y0) / CELL_DEG) + 2
        every_village = np.flatnonzero(self.village)  # an unsure one's boundary counts too
        bounds = shapely.bounds(self.polygons[every_village])
        i0 = ((bounds[:, 0] - self.x0) // CELL_DEG).astype(np.int64)
        i1 = ((bounds[:, 2] - self.x0) // CELL_DEG).astype(np.int64)
        j0 = ((bounds[:, 1] - self.y0) // CELL_DEG).astype(np.int64)
        j1 = ((bounds[:, 3] - self.y0) // CELL_DEG).astype(np.int64)
        region = self._changed(previous, every_village)  # (a0, a1, b0, b1) of cells to work out, or None
        if region is not None and region[0] > region[1]:
            self.inside = previous.inside  # no village's polygon changed
            return
        edge = np.zeros((self.nx, self.ny), dtype=bool)
        samples = shapely.get_coordinates(shapely.segmentize(self.boundaries[every_village], CELL_DEG / 4))
        sx = np.floor((samples[:, 0] - self.x0) / CELL_DEG).astype(np.int64)
        sy = np.floor((samples[:, 1] - self.y0) / CELL_DEG).astype(np.int64)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                edge[np.clip(sx + dx, 0, self.nx - 1), np.clip(sy + dy, 0, self.ny - 1)] = True
        if region is None:
            inside = np.full((self.nx, self.ny), -1, dtype=np.int16 if len(self.ids) < 32767 else np.int32)
            region = (0, self.nx - 1, 0, self.ny - 1)
        else:
            inside = previous.inside.reshape(self.nx, self.ny).copy()
            inside[region[0]:region[1] + 1, region[2]:region[3] + 1] = -1
        # the villages' boxes clipped to the region; villages whose box misses it are left out
        i0, i1 = np.maximum(i0, region[0]), np.minimum(i1, region[1])
        j0, j1 = np.maximum(j0, region[2]), np.minimum(j1, region[3])
        keep = (i0 <= i1) & (j0 <= j1)
        every_village, i0, i1, j0, j1 = every_village[keep], i0[keep], i1[keep], j0[keep], j1[keep]
        held_cells = []
        # every (cell, village) whose box holds a clean cell, in one array: one GEOS call per 64 villages
        for part in np.array_split(np.arange(len(every_village)), max(1, len(every_village) // 64)):
            if len(part) == 0:
                continue
            w, h = i1[part] - i0[part] + 1, j1[part] - j0[part] + 1
            n = w * h
            owner = np.repeat(part, n)
            k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)  # the cell's rank in its box
            ii = i0[owner] + k // h[owner - part[0]]
            jj = j0[owner] + k % h[owner - part[0]]
            clean = ~edge[ii, jj]
            owner, ii, jj = owner[clean], ii[clean], jj[clean]
            held = shapely.contains_xy(self.polygons[every_village[owner]], self.x0 + (ii + 0.5) * CELL_DEG,
                                       self.y0 + (jj + 0.5) * CELL_DEG)
            owner, flat = every_village[owner[held]], ii[held] * self.ny + jj[held]
            held_cells.append(flat)
            inside.ravel()[flat] = np.where(self.unsure[owner], -1, owner)
        holders = np.bincount(np.concatenate(held_cells), minlength=self.nx * self.ny) if held_cells else None
        if holders is not None:  # overlapping villages: the statement's scan order decides
            inside.ravel()[np.flatnonzero(holders > 1)] = -1
        # GEOS may misjudge an invalid polygon: its box is PostGIS's
        for k in every_village[self.unsure[every_village]]:
            bx0, by0, bx1, by1 = shapely.bounds(self.polygons[k])
            inside[max(int((bx0 - self.x0) // CELL_DEG), 0):int((bx1 - self.x0) // CELL_DEG) + 1,
                   max(int((by0 - self.y0) // CELL_DEG), 0):int((by1 - self.y0) // CELL_DEG) + 1] = -1
        self.inside = inside.ravel()

    def _changed(self, previous: "Areas | None", every_village: np.ndarray) -> tuple[int, int, int, int] | None:
        """The cells (i0, i1, j0, j1) the villages whose polygon changed since `previous` can
        touch (their old and new boxes, grown by the two cells an edge marks around it; empty when
        none changed), or None when everything is worked out again (no previous, another grid,
        other polygons)."""
        if (previous is None or len(previous.ids) != len(self.ids) or not np.array_equal(previous.ids, self.ids)
                or not np.array_equal(previous.unsure, self.unsure)
                or not np.array_equal(previous.village, self.village)
                or (previous.x0, previous.y0, previous.nx, previous.ny) != (self.x0, self.y0, self.nx, self.ny)):
            return None
        changed = [k for k in every_village.tolist() if previous.wkbs[k] != self.wkbs[k]]
        if not changed:
            return (0, -1, 0, -1)
        b = np.concatenate([shapely.bounds(previous.polygons[changed]), shapely.bounds(self.polygons[changed])])
        return (max(int((b[:, 0].min() - self.x0) // CELL_DEG) - 2, 0),
                min(int((b[:, 2].max() - self.x0) // CELL_DEG) + 2, self.nx - 1),
                max(int((b[:, 1].min() - self.y0) // CELL_DEG) - 2, 0),
                min(int((b[:, 3].max() - self.y0) // CELL_DEG) + 2, self.ny - 1))

    def village_at(self, lon: float, lat: float) -> int | None:
        """The position of the one village whose cell interior holds the point, if any."""
        cx = int((lon - self.x0) // CELL_DEG)
        cy = int((lat - self.y0) // CELL_DEG)
        if 0 <= cx < self.nx and 0 <= cy < self.ny:
            k = int(self.inside[cx * self.ny + cy])
            return k if k >= 0 else None
        return None

    def __len__(self) -> int:
        return len(self.ids)

    def covering(self, lon: float, lat: float) -> list[tuple[int, str]] | None:
        """What the statements' `cov` holds at the point, as (id, level) in id order: the active
        villages whose polygon covers it, else the active divisions above them that do; None
        when the point is too near one of those boundaries for memory to be exact."""
        k = self.village_at(lon, lat)
        if k is not None:
            return [(int(self.ids[k]), "village")]
        boxed = self._boxes.get((int(lon // BOX_DEG), int(lat // BOX_DEG)))
        if boxed is None:
            return []
        point = None
        for part in (boxed[self.village[boxed]], boxed[~self.village[boxed]]):
            if len(part) == 0:
                continue
            if point is None:
                point = shapely.points((lon, lat))
            if self.unsure[part].any() or shapely.dwithin(self.boundaries[part], point, EDGE_DEG).any():
                return None
            hit = np.sort(part[shapely.intersects_xy(self.polygons[part], lon, lat)])  # covers, for a point
            if len(hit):
                return [(int(self.ids[i]), self.levels[i]) for i in hit]
        return []

    def chain(self, division_id: int) -> list[tuple[str, str | None, str]] | None:
        """(level, code, name) from the top down to `division_id` (CHAIN_SQL's rows); None on a
        parent cycle. Kept once made (an Areas never changes)."""
        if division_id in self._chains:
            return self._chains[division_id]
        chain = self._chains[division_id] = self._climb(division_id)
        return chain

    def _climb(self, division_id: int) -> list[tuple[str, str | None, str]] | None:
        out = []
        d = self.divisions.get(division_id)
        while d is not None:
            out.append((d.level, d.code, d.name))
            if len(out) > MAX_CHAIN:
                return None
            d = self.divisions.get(d.parent_id) if d.parent_id is not None else None
        out.reverse()
        return out
