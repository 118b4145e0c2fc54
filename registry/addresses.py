"""Addresses (地址): lookup by stable id or code, listing by division, and the derived code.

The address code follows the spirit of GB/T 23705: the 12-digit code of the village/community
the door stands in, then an 8-digit sequence within it (`330502003001` + `00000123`). It is
derived and versioned: when a division's code changes, the address gets a new code and the old
one keeps resolving through `address_codes`. The `id` never changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from registry.db.tables import address_codes, addresses, divisions, place_names
from registry.divisions import descendant_ids_query, resolve_division_id
from registry.errors import Forbidden, InvalidQuery, NotFound

STATUSES = ("planned", "active", "retired")
MAX_PAGE = 1000


def address_code(village_code: str, local_seq: int) -> str:
    return f"{village_code}{local_seq:08d}"


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int

    @classmethod
    def of(cls, limit: int | None, offset: int | None, *, default: int = 100) -> "Page":
        limit = default if limit is None else limit
        offset = 0 if offset is None else offset
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidQuery(f"limit 应在 1 到 {MAX_PAGE} 之间 / limit must be between 1 and {MAX_PAGE}",
                               parameter="limit")
        if offset < 0:
            raise InvalidQuery("offset 不能为负 / offset must not be negative", parameter="offset")
        return cls(limit, offset)


_street = place_names.alias("street")
_compound = place_names.alias("compound")

_COLUMNS = [
    addresses.c.id,
    addresses.c.full_text,
    addresses.c.code,
    addresses.c.status,
    addresses.c.group_no,
    addresses.c.number,
    addresses.c.building,
    addresses.c.unit,
    addresses.c.room,
    addresses.c.version,
    addresses.c.valid_from,
    addresses.c.change_set_id,
    addresses.c.source,
    addresses.c.division_id,
    divisions.c.nbs_code.label("division_code"),
    divisions.c.name.label("division_name"),
    _street.c.name.label("street"),
    _compound.c.name.label("compound"),
    _compound.c.category.label("compound_category"),
    func.ST_X(addresses.c.geom).label("lon"),
    func.ST_Y(addresses.c.geom).label("lat"),
]


def _base_query():
    return (
        select(*_COLUMNS)
        .select_from(addresses)
        .join(divisions, divisions.c.id == addresses.c.division_id)
        .outerjoin(_street, _street.c.id == addresses.c.street_id)
        .outerjoin(_compound, _compound.c.id == addresses.c.compound_id)
    )


def _record(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "address": row.full_text,
        "code": row.code,
        "status": row.status,
        "division_code": row.division_code,
        "division_name": row.division_name,
        "street": row.street,
        "compound": row.compound if row.compound_category != "natural_village" else None,
        "natural_village": row.compound if row.compound_category == "natural_village" else None,
        "group": row.group_no or None,
        "number": row.number or None,
        "building": row.building or None,
        "unit": row.unit or None,
        "room": row.room or None,
        "version": row.version,
        "valid_from": row.valid_from.isoformat() if row.valid_from else None,
        "change_set_id": row.change_set_id,
        "source": row.source,
        "division_id": row.division_id,
        "lon": round(row.lon, 7) if row.lon is not None else None,
        "lat": round(row.lat, 7) if row.lat is not None else None,
    }


# What a caller sees of an address. The public (no key) gets the standard address and its parts,
# the code, the status, the point and the division chain; an agency key (the README's "full
# records") also gets the record's version, since when it holds, the change set and source that
# wrote it, a link to its history and the doorplates on it.
PUBLIC_FIELDS = ("id", "address", "code", "status", "divisions", "division_code", "division_name", "street",
                 "compound", "natural_village", "group", "number", "building", "unit", "room", "lon", "lat")
AGENCY_FIELDS = PUBLIC_FIELDS + ("version", "valid_from", "change_set_id", "source", "history", "plates")


def _chains(conn: Connection, division_ids: set[int]) -> dict[int, list[dict[str, Any]]]:
    from registry.divisions import parent_chain, primary_code

    rows = conn.execute(select(divisions.c.id, divisions.c.name, divisions.c.level, divisions.c.nbs_code,
                               divisions.c.mca_code).where(divisions.c.id.in_(division_ids))).all()
    return {r.id: [d.as_dict() for d in parent_chain(conn, r.id)]
            + [{"code": primary_code(r.mca_code, r.nbs_code), "name": r.name, "level": r.level}] for r in rows}


def _plates(conn: Connection, address_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    from sqlalchemy import text

    from registry.doorplates.plates import plate_code

    out: dict[int, list[dict[str, Any]]] = {i: [] for i in address_ids}
    for r in conn.execute(text("""SELECT id, address_id, kind, status FROM doorplates
                                  WHERE address_id = ANY(:ids) ORDER BY id"""), {"ids": address_ids}):
        out[r.address_id].append({"id": r.id, "code": plate_code(r.id), "kind": r.kind, "status": r.status})
    return out


def address_views(conn: Connection, records: list[dict[str, Any]], *, agency: bool) -> list[dict[str, Any]]:
    """The public or the agency view of address records (one query per kind of extra, not per row)."""
    if not records:
        return []
    chains = _chains(conn, {r["division_id"] for r in records})
    plates = _plates(conn, [r["id"] for r in records]) if agency else {}
    fields = AGENCY_FIELDS if agency else PUBLIC_FIELDS
    out = []
    for r in records:
        extra = {"divisions": chains.get(r["division_id"], [])}
        if agency:
            extra.update(history=f"/v1/addresses/{r['id']}/history", plates=plates.get(r["id"], []))
        full = {**r, **extra}
        out.append({k: full.get(k) for k in fields})
    return out


def get_address(conn: Connection, address_id: int) -> dict[str, Any]:
    if address_id < 1:
        raise InvalidQuery("地址标识应为正整数 / id must be a positive integer", parameter="id")
    row = conn.execute(_base_query().where(addresses.c.id == address_id)).first()
    if row is None:
        raise NotFound(f"地址 id {address_id} 不存在 / no address with id {address_id}", parameter="id")
    return _record(row)


def resolve_address_code(conn: Connection, code: str) -> int:
    """Address id for a current or former address code."""
    found = conn.execute(select(addresses.c.id).where(addresses.c.code == code)).scalar_one_or_none()
    if found is None:
        found = conn.execute(select(address_codes.c.address_id).where(address_codes.c.code == code)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"地址编码 {code} 不存在 / no address with code {code}", parameter="code")
    return found


PUBLIC_MAX_PAGE = 100  # a citizen's page; agencies page up to MAX_PAGE


@dataclass(frozen=True)
class Listing:
    records: list[dict]
    total: int | None  # counted for agencies only: a count(*) per public page would be a cheap DoS
    next_after: int | None  # the `after=` of the next page, None on the last


def list_addresses(conn: Connection, division_code: str, page: Page, *, status: str | None = None,
                   authority: str | None = None, after: int | None = None, agency: bool = True) -> Listing:
    """Addresses in a division and below, ordered by id, a page at a time: by `after` (keyset, the
    last id of the previous page) or, for agencies, `offset`. The public sees active addresses
    only, in pages of at most PUBLIC_MAX_PAGE, without a total."""
    division_id, _ = resolve_division_id(conn, division_code, parameter="division", authority=authority)
    if status is not None and status not in STATUSES:
        raise InvalidQuery(f"status 应为 {'/'.join(STATUSES)} / status must be one of {', '.join(STATUSES)}",
                           parameter="status")
    if not agency:
        if status not in (None, "active"):
            raise Forbidden(f"公众只能查看现行地址（status=active）；status={status} 需要 agency 权限 / the public sees "
                            f"active addresses only: status={status} needs the agency scope", parameter="status")
        if page.limit > PUBLIC_MAX_PAGE:
            raise InvalidQuery(f"limit 应在 1 到 {PUBLIC_MAX_PAGE} 之间（公众）/ limit must be between 1 and "
                               f"{PUBLIC_MAX_PAGE} without an agency key", parameter="limit")
        if page.offset:
            raise InvalidQuery("公众翻页请用 after=上一页最后的 id / without an agency key, page with after=<last id "
                               "of the previous page> (the next link), not offset", parameter="offset")
        status = "active"
    if after is not None and after < 0:
        raise InvalidQuery("after 不能为负 / after must not be negative", parameter="after")
    under = descendant_ids_query(division_id)
    cond = [addresses.c.division_id.in_(under)]
    if status:
        cond.append(addresses.c.status == status)
    total = conn.execute(select(func.count()).select_from(addresses).where(*cond)).scalar_one() if agency else None
    if after is not None:
        cond.append(addresses.c.id > after)
    query = _base_query().where(*cond).order_by(addresses.c.id).limit(page.limit + 1)
    if after is None and page.offset:
        query = query.offset(page.offset)
    rows = conn.execute(query).all()
    more = len(rows) > page.limit
    rows = rows[:page.limit]
    return Listing([_record(r) for r in rows], total, rows[-1].id if more and rows else None)


def as_feature(record: dict[str, Any]) -> dict[str, Any]:
    props = {k: v for k, v in record.items() if k not in ("id", "lon", "lat")}
    geometry = None
    if record.get("lon") is not None:
        geometry = {"type": "Point", "coordinates": [record["lon"], record["lat"]]}
    return {"type": "Feature", "id": record["id"], "geometry": geometry, "properties": props}


def address_history(conn: Connection, address_id: int) -> list[dict[str, Any]]:
    """Every version of an address, oldest first (the current one last)."""
    get_address(conn, address_id)  # NotFound for an unknown id
    from sqlalchemy import text

    rows = conn.execute(text("""
        SELECT version, valid_from, valid_to, full_text, code, status, change_set_id,
               ST_X(geom) AS lon, ST_Y(geom) AS lat
        FROM (SELECT * FROM addresses_history WHERE id = :id
              UNION ALL SELECT * FROM addresses WHERE id = :id) v
        ORDER BY version
    """), {"id": address_id}).mappings().all()
    return [
        {
            "version": r["version"],
            "valid_from": r["valid_from"].isoformat(),
            "valid_to": r["valid_to"].isoformat() if r["valid_to"] else None,
            "address": r["full_text"],
            "code": r["code"],
            "status": r["status"],
            "change_set_id": r["change_set_id"],
            "lon": r["lon"],
            "lat": r["lat"],
        }
        for r in rows
    ]
