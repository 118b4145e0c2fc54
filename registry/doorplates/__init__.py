"""Digital doorplates (数字门牌): plates, signed QR tokens, the scan view, reports, scan counts and
print sheets. No web framework here: `api/routes/doorplates.py` and the `registry plates` commands
call these functions.
"""
from __future__ import annotations

from sqlalchemy import Connection

from registry.doorplates.plates import (
    KIND_NAMES,
    KINDS,
    STATUS_NAMES,
    STATUSES,
    IssueResult,
    activate_division,
    activate_plate,
    get_plate,
    get_plate_row,
    issue_plates,
    live_plate_for,
    natural_kind,
    parse_plate_code,
    plate_code,
    plates_for_print,
    replace_plate,
    revoke_plate,
    validate_kind,
)
from registry.doorplates.follow import SUSPENDED_REASON, FollowResult, follow_addresses
from registry.doorplates.printing import (PlateFace, check_printable_base_url, qr, qr_png, qr_svg,
                                          render_sheet, sheet_header)
from registry.doorplates.reports import REPORT_KINDS, close_reports, list_reports, submit_report
from registry.doorplates.scans import ScanCounter, scan_counts
from registry.doorplates.tokens import (
    InvalidSignature,
    InvalidToken,
    KeyRing,
    ensure_signing_key,
    list_keys,
    retire_key,
    rotate_key,
    scan_url,
    sign,
)
from registry.doorplates.view import Scan, fetch_rows, parts_from_row, plate_face, resolve


def plate_url(conn: Connection, plate_id: int, *, ring: KeyRing, base_url: str) -> str:
    """The signed scan URL printed in a plate's QR code."""
    row = get_plate_row(conn, plate_id)
    return scan_url(base_url, ring.token_for(conn, plate_id, row["key_id"]))


def plate_faces(conn: Connection, plate_ids: list[int], *, ring: KeyRing, base_url: str) -> list[PlateFace]:
    """What each plate shows when printed, in the order given."""
    rows = fetch_rows(conn, list(plate_ids))
    faces = []
    for pid in plate_ids:
        row = rows.get(pid)
        if row is None:
            continue
        face = plate_face(row["kind"], parts_from_row(row))
        url = scan_url(base_url, ring.token_for(conn, pid, row["key_id"]))
        faces.append(PlateFace(face["name"], face["pinyin"], face["number"], url, plate_code(pid),
                               KIND_NAMES[row["kind"]]))
    return faces


def print_division(conn: Connection, division: str, *, ring: KeyRing, base_url: str, kind: str | None = None,
                   limit: int | None = None, authority: str | None = None,
                   force_local_url: bool = False) -> tuple[bytes, int]:
    """A PDF print sheet of the live plates of a division; (pdf bytes, plates printed). Refused
    (LocalBaseUrl) while `base_url` is not public, unless `force_local_url`."""
    warning = check_printable_base_url(base_url, force=force_local_url)
    ids = plates_for_print(conn, division, kind=kind, limit=limit, authority=authority)
    faces = plate_faces(conn, ids, ring=ring, base_url=base_url)
    header = sheet_header(conn, division, ids, base_url=base_url, authority=authority, warning=warning)
    return render_sheet(faces, header=header), len(faces)


__all__ = [
    "KINDS", "KIND_NAMES", "REPORT_KINDS", "STATUSES", "STATUS_NAMES", "SUSPENDED_REASON",
    "FollowResult", "InvalidSignature", "InvalidToken", "IssueResult", "KeyRing", "PlateFace", "Scan", "ScanCounter",
    "activate_division", "activate_plate", "check_printable_base_url", "close_reports", "ensure_signing_key", "follow_addresses", "get_plate", "get_plate_row",
    "issue_plates", "list_keys", "list_reports", "live_plate_for", "natural_kind", "parse_plate_code",
    "plate_code", "plate_faces", "plate_url", "plates_for_print", "print_division", "qr", "qr_png", "qr_svg",
    "render_sheet", "replace_plate", "resolve", "retire_key", "revoke_plate", "rotate_key", "scan_counts",
    "scan_url", "sign", "submit_report", "validate_kind",
]
