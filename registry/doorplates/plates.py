"""Plates (门牌): kinds, short codes, issuing and the lifecycle issued → active → replaced / revoked
(and suspended while the address is retired: see registry/doorplates/follow.py).

- A plate's identifier is the `doorplates.id` sequence value: never changed, never reused. Its
  short code (`plate_code`) is Crockford base32 of that id with a check symbol, for people.
- At most one live (issued or active) plate exists per address and kind (a partial unique index),
  so issuing for an address, a street or a whole division is idempotent and set-based.
- Kinds: 门牌 door (an address with a number and no building), 户牌 flat (an address with a room),
  and one 楼牌 building plate and one 单元牌 unit plate per building and unit entrance found among
  the addresses; those two hang on a representative address (the lowest id of the building/unit)
  and show the address down to their own level only.
- Every write happens in a change set of kind "doorplates"; the history trigger keeps every
  earlier version of a plate in `doorplates_history`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, text

from registry.changes import apply_change_set, audit, open_change_set
from registry.db.tables import addresses, doorplates, place_names
from registry.divisions import resolve_division_id
from registry.doorplates.tokens import ensure_signing_key
from registry.errors import Conflict, InvalidQuery, NotFound

KINDS = ("door", "building", "unit", "flat")
KIND_NAMES = {"door": "门牌", "building": "楼牌", "unit": "单元牌", "flat": "户牌"}
STATUSES = ("issued", "active", "suspended", "replaced", "revoked")
STATUS_NAMES = {"issued": "已签发", "active": "已安装", "suspended": "暂停（地址已注销）", "replaced": "已替换",
                "revoked": "已注销"}
LIVE = ("issued", "active")
MAX_REASON = 200

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CHECK = _CROCKFORD + "*~$=U"
_DECODE = {c: i for i, c in enumerate(_CROCKFORD)} | {"O": 0, "I": 1, "L": 1}
_CODE_RE = re.compile(r"^[0-9A-Za-z]{2,13}[0-9A-Za-z*~$=]$")


def natural_kind(*, building: str = "", unit: str = "", room: str = "") -> str:
    if room:
        return "flat"
    if unit:
        return "unit"
    if building:
        return "building"
    return "door"


def validate_kind(kind: str | None, parameter: str = "kind") -> str | None:
    if kind is None or kind == "":
        return None
    if kind not in KINDS:
        raise InvalidQuery(
            f"未知门牌类型 {kind!r}；可选 {', '.join(KINDS)} / unknown {parameter} {kind!r}: "
            f"choose from {', '.join(KINDS)}",
            parameter=parameter,
        )
    return kind


# Two base32 digits for each 10 bits: a plate id under 2^30 is three of them (the six digits, zeros
# leading), without a loop.
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)


def plate_code(plate_id: int) -> str:
    """`12345` → `000C1SR`: six Crockford base32 digits (more past 2^30) and a mod-37 check symbol."""
    if type(plate_id) is int and 0 <= plate_id < 1 << 30:
        return (_PAIRS[plate_id >> 20] + _PAIRS[plate_id >> 10 & 1023] + _PAIRS[plate_id & 1023]
                + _CHECK[plate_id % 37])
    n, digits = plate_id, []
    while n:
        n, r = divmod(n, 32)
        digits.append(_CROCKFORD[r])
    body = "".join(reversed(digits)).rjust(6, "0")
    return body + _CHECK[plate_id % 37]


def parse_plate_code(code: str, parameter: str = "plate") -> int:
    """A plate id from its code (case-insensitive, O/I/L forgiven, hyphens ignored)."""
    code = (code or "").strip().replace("-", "").upper()
    if not _CODE_RE.match(code):
        raise InvalidQuery(f"门牌编号格式错误 {code!r} / malformed plate code {code!r}", parameter=parameter)
    value = 0
    for ch in code[:-1]:
        if ch not in _DECODE:
            raise InvalidQuery(f"门牌编号格式错误 {code!r} / malformed plate code {code!r}", parameter=parameter)
        value = value * 32 + _DECODE[ch]
    if value < 1 or _CHECK[value % 37] != code[-1]:
        raise InvalidQuery(f"门牌编号校验失败 {code!r} / plate code {code!r} fails its check symbol",
                           parameter=parameter)
    return value


def _reason(reason: str | None, required: bool) -> str | None:
    reason = (reason or "").strip()
    if required and not reason:
        raise InvalidQuery("请说明原因 / a reason is required", parameter="reason")
    if len(reason) > MAX_REASON:
        raise InvalidQuery(f"原因不能超过 {MAX_REASON} 字 / reason must be at most {MAX_REASON} characters",
                           parameter="reason")
    return reason or None


# --- issuing -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IssueResult:
    change_set_id: int | None
    issued: int  # new plates
    already: int  # addresses in scope that already had a live plate of that kind
    key_id: int

    def as_dict(self) -> dict[str, Any]:
        return {"change_set_id": self.change_set_id, "issued": self.issued, "already_issued": self.already,
                "key_id": self.key_id}


# What one plate of each kind stands for, as the key shared by the addresses it covers. A door plate
# and a flat plate cover one address; a building plate covers every address of the building (楼牌),
# a unit plate every address behind one unit entrance (单元牌). Those two hang on a representative
# address (the lowest id of the building / unit) and show the address only down to their level.
_BUILDING_KEY = ("{x}.division_id", "coalesce({x}.street_id, 0)", "coalesce({x}.compound_id, 0)", "{x}.group_no",
                 "{x}.number", "{x}.building")
PLATE_KEYS: dict[str, tuple[str, ...]] = {
    "door": ("{x}.id",),
    "flat": ("{x}.id",),
    "building": _BUILDING_KEY,
    "unit": _BUILDING_KEY + ("{x}.unit",),
}
_TARGET_FILTER = {
    "door": "{x}.building = '' AND {x}.unit = '' AND {x}.room = ''",
    "flat": "{x}.room <> ''",
    "building": "{x}.building <> ''",
    "unit": "{x}.unit <> ''",
}


def _key(kind: str, alias: str) -> str:
    return ", ".join(part.format(x=alias) for part in PLATE_KEYS[kind])


def _issue_kind(conn: Connection, kind: str, scope: str, params: dict[str, Any], *, count_only: bool):
    """count_only: (targets of one kind in scope, those without a live plate); else insert the
    missing plates and return how many."""
    key_a, key_b = _key(kind, "a"), _key(kind, "b")
    targets = f"""
        SELECT min(a.id) AS address_id, {key_a}
        FROM addresses a
        WHERE a.status = 'active' AND {scope.format(x="a")} AND {_TARGET_FILTER[kind].format(x="a")}
        GROUP BY {key_a}"""
    live = f"""
        SELECT {key_b}
        FROM doorplates d JOIN addresses b ON b.id = d.address_id
        WHERE d.kind = '{kind}' AND d.status IN ('issued', 'active') AND {scope.format(x="b")}"""
    n_key = len(PLATE_KEYS[kind])
    cols = ", ".join(f"k{i}" for i in range(n_key))
    with_ = f"WITH targets(address_id, {cols}) AS ({targets}), live({cols}) AS ({live})"
    missing = (f"NOT EXISTS (SELECT 1 FROM live l WHERE ({', '.join(f'l.k{i}' for i in range(n_key))})"
               f" = ({', '.join(f't.k{i}' for i in range(n_key))}))")
    if count_only:
        row = conn.execute(text(f"{with_} SELECT count(*), count(*) FILTER (WHERE {missing}) FROM targets t"),
                           params).one()
        return int(row[0]), int(row[1])
    return conn.execute(text(f"""
        {with_}
        INSERT INTO doorplates (address_id, kind, status, key_id, change_set_id, source)
        SELECT t.address_id, '{kind}', 'issued', :key_id, :cs, :source
        FROM targets t
        WHERE {missing}
        ON CONFLICT (address_id, kind) WHERE status IN ('issued', 'active') DO NOTHING
    """), params).rowcount


def issue_plates(
    conn: Connection,
    *,
    actor: str,
    address_id: int | None = None,
    street_id: int | None = None,
    division: str | None = None,
    kind: str | None = None,
    source: str | None = None,
    authority: str | None = None,
) -> IssueResult:
    """Issue plates for one address, a street or a division (and everything below it).

    Every kind by default: door plates for doors, flat plates for rooms, and one building plate and
    one unit plate per building and unit entrance found among the addresses. Idempotent: what already
    has a live plate of the kind is left alone. Set-based: one INSERT … SELECT per kind, whatever the
    scope (the whole city in four statements).
    """
    kind = validate_kind(kind)
    scopes = [x is not None for x in (address_id, street_id, division)]
    if sum(scopes) != 1:
        raise InvalidQuery("请指定地址、道路或区划之一 / give exactly one of address_id, street_id, division",
                           parameter="division" if division is not None else "address_id")
    params: dict[str, Any] = {}
    kinds = [kind] if kind else list(KINDS)
    if address_id is not None:
        row = conn.execute(select(addresses.c.building, addresses.c.unit, addresses.c.room, addresses.c.status)
                           .where(addresses.c.id == address_id)).first() if address_id >= 1 else None
        if row is None:
            raise NotFound(f"地址 {address_id} 不存在 / address_id {address_id} not found", parameter="address_id")
        if row.status == "retired":
            raise Conflict(f"地址 {address_id} 已注销，不能签发门牌 / address {address_id} is retired: no plate is issued",
                           parameter="address_id", address_status="retired")
        params["address_id"] = address_id
        # the address's own plate, and the plates of the building and unit it is in
        own = natural_kind(building=row.building, unit=row.unit, room=row.room)
        covering = {"door": ("door",), "building": ("building",), "unit": ("building", "unit"),
                    "flat": ("building", "unit", "flat")}[own]
        kinds = [k for k in kinds if k in covering]

        def scope_of(k: str) -> str:
            if k in ("door", "flat"):
                return "{x}.id = :address_id"
            own_key = ", ".join(part.format(x="o") for part in PLATE_KEYS[k])
            return f"({_key(k, '{x}')}) = (SELECT {own_key} FROM addresses o WHERE o.id = :address_id)"
    elif street_id is not None:
        if street_id < 1 or conn.execute(select(place_names.c.id).where(place_names.c.id == street_id)).first() is None:
            raise NotFound(f"道路 {street_id} 不存在 / street_id {street_id} not found", parameter="street_id")
        params["street_id"] = street_id

        def scope_of(k: str) -> str:
            return "{x}.street_id = :street_id"
    else:
        params["division_id"], _ = resolve_division_id(conn, division, parameter="division", authority=authority)

        def scope_of(k: str) -> str:
            return ("{x}.division_id IN (WITH RECURSIVE tree AS (SELECT id FROM divisions WHERE id = :division_id "
                    "UNION ALL SELECT c.id FROM divisions c JOIN tree ON c.parent_id = tree.id) SELECT id FROM tree)")

    key_id = ensure_signing_key(conn, actor=actor)
    per_kind = {k: (scope_of(k), *_issue_kind(conn, k, scope_of(k), params, count_only=True)) for k in kinds}
    in_scope = sum(n for _, n, _ in per_kind.values())
    if not any(missing for _, _, missing in per_kind.values()):
        # nothing to issue: no change set (an empty one per no-op run would bury the real ones)
        return IssueResult(None, 0, in_scope, key_id)

    cs = open_change_set(conn, kind="doorplates", author=actor, source=source or "plates issue",
                         reason="issue plates", details={"address_id": address_id, "street_id": street_id,
                                                         "division": division, "authority": authority, "kind": kind})
    params.update(cs=cs, key_id=key_id, source=source or "plates issue")
    counts: dict[str, Any] = {}
    issued = 0
    for k, (sc, _targets, missing) in per_kind.items():
        if missing:
            n = _issue_kind(conn, k, sc, params, count_only=False)
            counts[k] = n
            issued += n
    counts.update(issued=issued, already_issued=in_scope - issued)
    apply_change_set(conn, cs, actor=actor, counts=counts)
    return IssueResult(cs, issued, in_scope - issued, key_id)


# --- reading -----------------------------------------------------------------------------------
def get_plate_row(conn: Connection, plate_id: int, parameter: str = "plate_id"):
    if plate_id < 1:
        raise InvalidQuery(f"门牌标识应为正整数 / {parameter} must be a positive integer", parameter=parameter)
    row = conn.execute(select(doorplates).where(doorplates.c.id == plate_id)).mappings().first()
    if row is None:
        raise NotFound(f"门牌 {plate_id} 不存在 / {parameter} {plate_id} not found", parameter=parameter)
    return row


def _iso(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def plate_record(row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "code": plate_code(row["id"]),
        "kind": row["kind"],
        "kind_name": KIND_NAMES.get(row["kind"], row["kind"]),
        "status": row["status"],
        "status_name": STATUS_NAMES.get(row["status"], row["status"]),
        "address_id": row["address_id"],
        "replaced_by": ({"id": row["replaced_by_id"], "code": plate_code(row["replaced_by_id"])}
                        if row["replaced_by_id"] else None),
        "reason": row["reason"],
        "issued_at": _iso(row["issued_at"]),
        "ended_at": _iso(row["ended_at"]),
        "key_id": row["key_id"],
        "version": row["version"],
    }


def plate_history(conn: Connection, plate_id: int) -> list[dict[str, Any]]:
    """Every version of a plate, oldest first (the current one last)."""
    rows = conn.execute(text("""
        SELECT version, status, reason, replaced_by_id, address_id, valid_from, valid_to, change_set_id
        FROM (SELECT version, status, reason, replaced_by_id, address_id, valid_from, valid_to, change_set_id
              FROM doorplates_history WHERE id = :id
              UNION ALL
              SELECT version, status, reason, replaced_by_id, address_id, valid_from, valid_to, change_set_id
              FROM doorplates WHERE id = :id) v
        ORDER BY version
    """), {"id": plate_id}).mappings().all()
    return [
        {
            "version": r["version"],
            "status": r["status"],
            "reason": r["reason"],
            "replaced_by_id": r["replaced_by_id"],
            "address_id": r["address_id"],
            "valid_from": r["valid_from"].isoformat(),
            "valid_to": r["valid_to"].isoformat() if r["valid_to"] else None,
            "change_set_id": r["change_set_id"],
        }
        for r in rows
    ]


def get_plate(conn: Connection, plate_id: int) -> dict[str, Any]:
    out = plate_record(get_plate_row(conn, plate_id))
    out["address_status"] = conn.execute(select(addresses.c.status).where(addresses.c.id == out["address_id"])
                                         ).scalar_one_or_none()
    out["history"] = plate_history(conn, plate_id)
    return out


def live_plate_for(conn: Connection, address_id: int, kind: str | None = None) -> int | None:
    q = select(doorplates.c.id).where(doorplates.c.address_id == address_id, doorplates.c.status.in_(LIVE))
    if kind:
        q = q.where(doorplates.c.kind == kind)
    return conn.execute(q.order_by(doorplates.c.id).limit(1)).scalar_one_or_none()


# --- lifecycle ---------------------------------------------------------------------------------
_ENDED_ZH = {"replaced": "已被替换", "revoked": "已注销", "suspended": "所对应地址已注销（门牌暂停）"}


def _lock_live(conn: Connection, plate_id: int, *, allow: tuple[str, ...] = LIVE):
    row = conn.execute(
        select(doorplates).where(doorplates.c.id == plate_id).with_for_update()
    ).mappings().first()
    if row is None:
        raise NotFound(f"门牌 {plate_id} 不存在 / plate_id {plate_id} not found", parameter="plate_id")
    if row["status"] not in allow:
        raise Conflict(f"门牌 {plate_code(plate_id)} {_ENDED_ZH.get(row['status'], row['status'])}，不能再变更 / "
                       f"plate {plate_id} is {row['status']}", parameter="plate_id", plate_status=row["status"])
    return row


def activate_plate(conn: Connection, plate_id: int, *, actor: str) -> dict[str, Any]:
    """issued → active (the plate is on the wall)."""
    row = _lock_live(conn, plate_id)
    if row["status"] == "active":
        return plate_record(row)
    cs = open_change_set(conn, kind="doorplates", author=actor, source="plates activate", reason="installed")
    conn.execute(text("UPDATE doorplates SET status = 'active', change_set_id = :cs WHERE id = :id"),
                 {"cs": cs, "id": plate_id})
    apply_change_set(conn, cs, actor=actor, counts={"activated": 1})
    return plate_record(get_plate_row(conn, plate_id))


def activate_division(conn: Connection, division: str, *, actor: str, authority: str | None = None) -> int:
    """Mark every issued plate in a division as installed (active)."""
    division_id, _ = resolve_division_id(conn, division, parameter="division", authority=authority)
    cs = open_change_set(conn, kind="doorplates", author=actor, source="plates activate",
                         reason="installed", details={"division": division})
    n = conn.execute(text("""
        UPDATE doorplates d SET status = 'active', change_set_id = :cs
        FROM addresses a
        WHERE a.id = d.address_id AND d.status = 'issued'
          AND a.division_id IN (WITH RECURSIVE tree AS (SELECT id FROM divisions WHERE id = :division_id
                                UNION ALL SELECT c.id FROM divisions c JOIN tree ON c.parent_id = tree.id)
                                SELECT id FROM tree)
    """), {"cs": cs, "division_id": division_id}).rowcount
    apply_change_set(conn, cs, actor=actor, counts={"activated": n})
    return n


def replace_plate(conn: Connection, plate_id: int, *, reason: str, actor: str) -> dict[str, Any]:
    """Issue a new plate for the same address and kind; the old one becomes `replaced` and points
    to the new one (its token then answers with the replacement). Open reports on it are closed."""
    reason = _reason(reason, required=True)
    old = _lock_live(conn, plate_id)
    key_id = ensure_signing_key(conn, actor=actor)
    cs = open_change_set(conn, kind="doorplates", author=actor, source="plates replace", reason=reason,
                         details={"plate_id": plate_id})
    new_id = conn.execute(text("SELECT nextval(pg_get_serial_sequence('doorplates', 'id'))")).scalar_one()
    conn.execute(text("SET CONSTRAINTS fk_doorplates_replaced_by_id_doorplates DEFERRED"))
    conn.execute(text("""
        UPDATE doorplates SET status = 'replaced', replaced_by_id = :new_id, reason = :reason,
               ended_at = now(), change_set_id = :cs
        WHERE id = :id
    """), {"new_id": new_id, "reason": reason, "cs": cs, "id": plate_id})
    conn.execute(text("""
        INSERT INTO doorplates (id, address_id, kind, status, key_id, change_set_id, source, reason)
        VALUES (:new_id, :address_id, :kind, 'issued', :key_id, :cs, 'plates replace', :reason)
    """), {"new_id": new_id, "address_id": old["address_id"], "kind": old["kind"], "key_id": key_id,
           "cs": cs, "reason": f"replaces {plate_code(plate_id)}"})
    conn.execute(text("SET CONSTRAINTS fk_doorplates_replaced_by_id_doorplates IMMEDIATE"))
    from registry.doorplates.reports import close_reports

    closed = close_reports(conn, plate_id, reason="replaced", by_plate_id=new_id)
    apply_change_set(conn, cs, actor=actor, counts={"replaced": 1, "issued": 1, "reports_closed": closed})
    return plate_record(get_plate_row(conn, new_id))


def revoke_plate(conn: Connection, plate_id: int, *, reason: str, actor: str) -> dict[str, Any]:
    """Withdraw a plate for good (address retired, plate stolen …). Open reports on it are closed.
    A suspended plate (its address retired) may be revoked too: the door is gone for good."""
    reason = _reason(reason, required=True)
    _lock_live(conn, plate_id, allow=LIVE + ("suspended",))
    cs = open_change_set(conn, kind="doorplates", author=actor, source="plates revoke", reason=reason,
                         details={"plate_id": plate_id})
    conn.execute(text("""
        UPDATE doorplates SET status = 'revoked', reason = :reason, ended_at = now(), change_set_id = :cs
        WHERE id = :id
    """), {"reason": reason, "cs": cs, "id": plate_id})
    from registry.doorplates.reports import close_reports

    closed = close_reports(conn, plate_id, reason="revoked")
    apply_change_set(conn, cs, actor=actor, counts={"revoked": 1, "reports_closed": closed})
    audit(conn, actor=actor, action="doorplate.revoke", entity_kind="doorplate", entity_id=plate_id,
          change_set_id=cs, details={"reason": reason})
    return plate_record(get_plate_row(conn, plate_id))


def plates_for_print(conn: Connection, division: str, *, kind: str | None = None, limit: int | None = None,
                     statuses: tuple[str, ...] = LIVE, authority: str | None = None) -> list[int]:
    """Ids of the live plates in a division, in street / number order (the order of a print run)."""
    kind = validate_kind(kind)
    division_id, _ = resolve_division_id(conn, division, parameter="division", authority=authority)
    rows = conn.execute(text(f"""
        SELECT d.id FROM doorplates d JOIN addresses a ON a.id = d.address_id
        WHERE d.status IN :statuses {"AND d.kind = :kind" if kind else ""}
          AND a.division_id IN (WITH RECURSIVE tree AS (SELECT id FROM divisions WHERE id = :division_id
                                UNION ALL SELECT c.id FROM divisions c JOIN tree ON c.parent_id = tree.id)
                                SELECT id FROM tree)
        ORDER BY a.division_id, a.street_id NULLS LAST, a.compound_id NULLS LAST, a.number_main NULLS LAST,
                 a.number, a.building, a.unit, a.room, d.id
        {"LIMIT :limit" if limit else ""}
    """).bindparams(bindparam("statuses", expanding=True)),
        {"statuses": list(statuses), "kind": kind, "division_id": division_id, "limit": limit}).scalars().all()
    return list(rows)
