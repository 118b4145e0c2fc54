"""The change feed: applied change sets in the order they were applied, with the entities each
touched, so that an agency keeps a copy in sync without downloading the whole registry again.

Derived from what the registry already keeps — every version of a versioned table names the change
set that wrote it (`change_set_id`), in the table and in `<table>_history` — so nothing is written
for the feed and nothing can be missed. For each entity a change set wrote, compared with the
entity's previous version:

- `created`  the change set wrote its first version;
- `retired`  its status became retired (abolished, delisted, revoked, replaced);
- `merged` / `split`  a division abolished by a merge / split adjustment, with its `successors`;
- `moved`    its geometry or its parent (division, line, address) changed;
- `modified` anything else.

Order and paging: change sets by (applied_at, id); inside one, by table (`TABLES`) and entity id.
`since` is a change set id (what was applied after it) or an ISO time (applied after it); a page
holds at most `limit` entities, and a change set that does not fit is continued on the next page
through `cursor` (`<change set>:<table>:<entity id>`). Scope: agency (see the API route).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from registry.errors import InvalidQuery, NotFound

if TYPE_CHECKING:
    from sqlalchemy import Connection

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
MAX_CHANGE_SETS = 200  # per page, whatever their size: keeps a page of many tiny change sets bounded


def _sql(statement: str):
    from sqlalchemy import text  # on first use: the CLI reads this module's limits at start-up

    return text(statement)


@dataclass(frozen=True)
class Table:
    name: str
    entity: str  # the name in the feed
    parent: str  # the column whose change is a move (besides the geometry)
    geom: bool = True


TABLES: tuple[Table, ...] = (
    Table("divisions", "division", "parent_id"),
    Table("boundary_lines", "boundary_line", "left_division_id"),
    Table("boundary_markers", "boundary_marker", "boundary_line_id"),
    Table("marker_reference_objects", "marker_reference_object", "marker_id"),
    Table("place_names", "place_name", "division_id"),
    Table("heritage_items", "heritage_item", "division_id"),
    Table("facilities", "facility", "division_id"),
    Table("addresses", "address", "division_id"),
    Table("doorplates", "doorplate", "address_id", geom=False),
)
RETIRED = ("retired", "abolished", "delisted", "revoked", "replaced")
_CURSOR = re.compile(r"^(\d+):(\d+):(\d+)$")
_RANK = {"created": 5, "merged": 4, "split": 4, "retired": 3, "moved": 2, "modified": 1}


def parse_limit(value: int | None) -> int:
    n = DEFAULT_LIMIT if value is None else value
    if not 1 <= n <= MAX_LIMIT:
        raise InvalidQuery(f"limit 应在 1 到 {MAX_LIMIT} 之间 / limit must be between 1 and {MAX_LIMIT}",
                           parameter="limit")
    return n


def _start(conn: Connection, since: str | None) -> tuple[datetime, int]:
    """The (applied_at, id) after which the feed starts."""
    if since is None or since.strip() == "":
        return datetime(1, 1, 2, tzinfo=timezone.utc), 0
    s = since.strip()
    if s.isdigit():
        row = conn.execute(_sql("SELECT applied_at FROM change_sets WHERE id = :i AND status = 'applied'"),
                           {"i": int(s)}).first()
        if row is None:
            raise NotFound(f"没有已应用的变更集 {s} / no applied change set {s}", parameter="since")
        return row.applied_at, int(s)
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidQuery(f"since 应为变更集编号或 ISO 时间 / since must be a change set id or an ISO time, got {since!r}",
                           parameter="since") from None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)), 2**62  # every change set applied at t is before


def _entities(conn: Connection, cs: int, table: Table, after: int, n: int,
              adjustment: str | None) -> tuple[list[dict], bool]:
    """(entity changes of one change set in one table with id > after, more of them left?)"""
    t = table.name
    geom = "geom" if table.geom else "NULL::geometry"
    cols = f"id, version, status, {geom} AS g, {table.parent} AS p"
    moved_geom = "h.id IS NOT NULL AND w.g IS DISTINCT FROM h.geom" if table.geom else "FALSE"
    # The rows the change set wrote, found as the plain `WHERE change_set_id` scan finds them (no
    # probe per entity), the current ones and the superseded ones each cut at n; the version before
    # each is (id, version - 1) in the history (versions count up by one): a primary-key lookup.
    rows = conn.execute(_sql(f"""
        WITH a AS (SELECT {cols}, 0 AS src FROM {t} WHERE change_set_id = :cs AND id > :after
                   ORDER BY id LIMIT :n),
             b AS (SELECT {cols}, 1 AS src FROM {t}_history WHERE change_set_id = :cs AND id > :after
                   ORDER BY id, version LIMIT :n),
             w AS (SELECT * FROM a UNION ALL SELECT * FROM b)
        SELECT w.id, w.version, w.status, w.src, h.status AS prev_status,
               ({moved_geom}) AS geom_changed,
               (h.id IS NOT NULL AND w.p IS DISTINCT FROM h.{table.parent}) AS parent_changed
        FROM w LEFT JOIN {t}_history h ON h.id = w.id AND h.version = w.version - 1
        ORDER BY w.id, w.version"""), {"cs": cs, "after": after, "n": n}).mappings().all()
    # A source that gave n rows may have more: keep the ids both sources gave completely.
    cutoff = None
    for src, partial_last in ((0, 0), (1, 1)):
        ids = [r["id"] for r in rows if r["src"] == src]
        if len(ids) >= n:
            c = max(ids) - partial_last  # a history id at the cut may have more versions
            cutoff = c if cutoff is None else min(cutoff, c)
    more = cutoff is not None
    if more:
        kept = [r for r in rows if r["id"] <= cutoff]
        rows = kept or [r for r in rows if r["id"] == rows[0]["id"]]
    out: dict[int, dict] = {}
    for r in rows:
        if r["prev_status"] is None:
            action = "created"
        elif r["status"] in RETIRED and r["prev_status"] not in RETIRED:
            action = {"merge": "merged", "split": "split"}.get(adjustment or "", "retired") \
                if table.name == "divisions" else "retired"
        elif r["geom_changed"] or r["parent_changed"]:
            action = "moved"
        else:
            action = "modified"
        seen = out.get(r["id"])
        # several versions by one change set: the strongest action, the last version
        if seen is None or _RANK[action] >= _RANK[seen["action"]]:
            out[r["id"]] = {"type": table.entity, "id": r["id"], "version": r["version"], "action": action,
                            "status": r["status"]}
        else:
            seen["version"], seen["status"] = r["version"], r["status"]
    return list(out.values()), more


def _successors(conn: Connection, ids: list[int]) -> dict[int, list[int]]:
    rows = conn.execute(_sql("SELECT division_id, successor_id FROM division_successors WHERE division_id = ANY(:i) "
                             "ORDER BY successor_id"), {"i": ids}).all()
    out: dict[int, list[int]] = {}
    for d, s in rows:
        out.setdefault(d, []).append(s)
    return out


def changes(conn: Connection, *, since: str | None = None, cursor: str | None = None,
            limit: int | None = None) -> dict[str, Any]:
    """One page of the feed: {"change_sets": [...], "next": {"since"|"cursor": …} or None}."""
    budget = parse_limit(limit)
    table_idx, after = 0, 0
    if cursor:
        m = _CURSOR.match(cursor.strip())
        if m is None or int(m.group(2)) >= len(TABLES):
            raise InvalidQuery(f"cursor 无效 / cursor {cursor!r} is not one this feed gave", parameter="cursor")
        first, table_idx, after = int(m.group(1)), int(m.group(2)), int(m.group(3))
        row = conn.execute(_sql("SELECT applied_at FROM change_sets WHERE id = :i AND status = 'applied'"),
                           {"i": first}).first()
        if row is None:
            raise InvalidQuery(f"cursor 无效 / cursor {cursor!r} is not one this feed gave", parameter="cursor")
        t0, id0 = row.applied_at, first - 1  # (applied_at, id) >= the cursor's change set
    else:
        t0, id0 = _start(conn, since)
    sets = conn.execute(_sql("""
        SELECT c.id, c.kind, c.applied_at, c.author, c.reason, c.approval_ref, c.source, c.counts,
               (SELECT a.kind FROM division_adjustments a WHERE a.change_set_id = c.id LIMIT 1) AS adjustment
        FROM change_sets c
        WHERE c.status = 'applied' AND (c.applied_at > :t OR (c.applied_at = :t AND c.id > :i))
        ORDER BY c.applied_at, c.id LIMIT :n"""), {"t": t0, "i": id0, "n": MAX_CHANGE_SETS}).mappings().all()
    page, nxt = [], None
    for cs in sets:
        entities: list[dict] = []
        complete = True
        for ti in range(table_idx, len(TABLES)):
            got, more = _entities(conn, cs["id"], TABLES[ti], after, budget - len(entities) + 1, cs["adjustment"])
            resume = after
            after = 0
            if len(entities) + len(got) > budget or more:  # this change set goes on on the next page
                got = got[:budget - len(entities)]
                entities += got
                nxt = {"cursor": f"{cs['id']}:{ti}:{got[-1]['id'] if got else resume}"}
                complete = False
                break
            entities += got
        table_idx = 0
        merged = [e["id"] for e in entities if e["action"] in ("merged", "split")]
        if merged:
            succ = _successors(conn, merged)
            for e in entities:
                if e["id"] in succ and e["type"] == "division":
                    e["successors"] = succ[e["id"]]
        page.append({
            "id": cs["id"], "kind": cs["kind"], "applied_at": cs["applied_at"].isoformat(), "author": cs["author"],
            "reason": cs["reason"], "approval_ref": cs["approval_ref"], "source": cs["source"],
            "counts": cs["counts"], "adjustment": cs["adjustment"], "complete": complete, "entities": entities,
        })
        budget -= len(entities)
        if not complete:
            break
        if budget <= 0:
            nxt = {"since": str(cs["id"])}
            break
    if nxt is None and len(sets) == MAX_CHANGE_SETS:
        nxt = {"since": str(sets[-1]["id"])}
    return {"change_sets": page, "numberReturned": sum(len(p["entities"]) for p in page), "next": nxt}
