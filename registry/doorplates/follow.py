"""Plates follow their address: retiring an address suspends its live plates, reactivating it
brings them back — in the caller's transaction and change set.

Whatever retires or reactivates addresses (the address loader's `--retire-missing` and a reload
that lists a retired door again; any future path) calls `follow_addresses` with the ids whose
status it changed, in the same transaction, with its own change set:

- a door or flat plate (门牌/户牌) of a retired address becomes `suspended`, with the reason
  `SUSPENDED_REASON`; its token keeps verifying, and the scan page says the address is retired
  (410 `address-retired`) instead of showing it as valid;
- a building or unit plate (楼牌/单元牌) hangs on a representative address of its building or unit
  (`PLATE_KEYS`): when that address is retired but another address of the building/unit is still
  active, the plate moves to it (same plate, same token); only when none is left is it suspended;
- when an address becomes active again, the suspended plates it carried (and the suspended
  building/unit plates of its building/unit, moved onto it) return to the status they had before
  (`issued` or `active`, read from `doorplates_history`) and their earlier reason. The physical
  plate usually still hangs on the door: a re-survey that retired a door by mistake must not
  leave a dead QR code, and a reissue would need a new plate.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from registry.doorplates.plates import LIVE, PLATE_KEYS

SUSPENDED_REASON = "门牌所对应地址已注销 / the address of this plate has been retired"
_LIVE_SQL = "(" + ", ".join(f"'{s}'" for s in LIVE) + ")"


@dataclass(frozen=True)
class FollowResult:
    suspended: int = 0  # live plates of retired addresses, now suspended
    moved: int = 0  # building/unit plates moved to another active address of their building/unit
    restored: int = 0  # suspended plates back to issued/active

    def as_counts(self) -> dict[str, int]:
        return {k: v for k, v in (("plates_suspended", self.suspended), ("plates_moved", self.moved),
                                  ("plates_restored", self.restored)) if v}


def _key(kind: str, alias: str) -> str:
    return ", ".join(part.format(x=alias) for part in PLATE_KEYS[kind])


def follow_addresses(conn: Connection, ids_sql: str, *, change_set_id: int, source: str | None = None,
                     params: dict | None = None) -> FollowResult:
    """Bring the plates of the addresses `ids_sql` selects (one column of address ids, whose status
    just changed) in line with their addresses' status. Set-based; returns the counts."""
    p = {**(params or {}), "cs": change_set_id, "source": source, "reason": SUSPENDED_REASON}
    x = lambda sql: conn.execute(text(sql), p).rowcount  # noqa: E731
    moved = suspended = restored = 0
    # 1. building/unit plates on a retired representative move to an active address of their group
    for kind in ("building", "unit"):
        moved += x(f"""
            WITH cand AS (
                SELECT d.id AS plate_id,
                       (SELECT min(b.id) FROM addresses b WHERE b.status = 'active'
                          AND ({_key(kind, 'b')}) = ({_key(kind, 'a')})) AS new_address_id
                FROM doorplates d JOIN addresses a ON a.id = d.address_id
                WHERE d.kind = '{kind}' AND d.status IN {_LIVE_SQL} AND a.status = 'retired'
                  AND a.id IN ({ids_sql}))
            UPDATE doorplates d SET address_id = c.new_address_id, change_set_id = :cs, source = :source
            FROM cand c
            WHERE d.id = c.plate_id AND c.new_address_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM doorplates l WHERE l.address_id = c.new_address_id
                              AND l.kind = d.kind AND l.status IN {_LIVE_SQL})""")
    # 2. every other live plate of a retired address is suspended
    suspended = x(f"""
        UPDATE doorplates d SET status = 'suspended', reason = :reason, change_set_id = :cs, source = :source
        FROM addresses a
        WHERE a.id = d.address_id AND a.id IN ({ids_sql}) AND a.status = 'retired' AND d.status IN {_LIVE_SQL}""")
    # 3. suspended plates come back with an address that is active again (building/unit plates of its
    #    building/unit move onto it); a plate whose place a live plate took meanwhile stays suspended
    restore = """
        UPDATE doorplates d SET status = coalesce(prev.status, 'issued'), reason = prev.reason,
               address_id = c.new_address_id, change_set_id = :cs, source = :source
        FROM cand c
        LEFT JOIN LATERAL (SELECT h.status, h.reason FROM doorplates_history h
                           WHERE h.id = c.plate_id AND h.status IN {live}
                           ORDER BY h.version DESC LIMIT 1) prev ON true
        WHERE d.id = c.plate_id
          AND NOT EXISTS (SELECT 1 FROM doorplates l WHERE l.address_id = c.new_address_id
                          AND l.kind = d.kind AND l.status IN {live})"""
    restored += x(f"""
        WITH cand AS (
            SELECT d.id AS plate_id, d.address_id AS new_address_id
            FROM doorplates d JOIN addresses a ON a.id = d.address_id
            WHERE d.kind IN ('door', 'flat') AND d.status = 'suspended' AND a.status = 'active'
              AND a.id IN ({ids_sql}))""" + restore.format(live=_LIVE_SQL))
    for kind in ("building", "unit"):
        restored += x(f"""
            WITH back AS (SELECT DISTINCT {_key(kind, 'r')} FROM addresses r
                          WHERE r.status = 'active' AND r.id IN ({ids_sql})),
                 cand AS (
                SELECT DISTINCT ON ({_key(kind, 'a')}) d.id AS plate_id,
                       (SELECT min(b.id) FROM addresses b WHERE b.status = 'active'
                          AND ({_key(kind, 'b')}) = ({_key(kind, 'a')})) AS new_address_id
                FROM doorplates d JOIN addresses a ON a.id = d.address_id
                WHERE d.kind = '{kind}' AND d.status = 'suspended' AND ({_key(kind, 'a')}) IN (SELECT * FROM back)
                  AND NOT EXISTS (SELECT 1 FROM doorplates l JOIN addresses la ON la.id = l.address_id
                                  WHERE l.kind = '{kind}' AND l.status IN {_LIVE_SQL}
                                    AND ({_key(kind, 'la')}) = ({_key(kind, 'a')}))
                ORDER BY {_key(kind, 'a')}, d.id DESC)""" + restore.format(live=_LIVE_SQL))
    return FollowResult(suspended, moved, restored)
