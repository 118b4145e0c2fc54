"""Digital doorplates over HTTP: the scan page `/p/{token}` (HTML for browsers, JSON on request),
problem reports from it, QR images, issuing and the plate lifecycle, and the office's report list.

The scan is the hot path: one verified HMAC (keys cached in memory), one SQL round trip, scan counts
buffered in memory, orjson / a precompiled Jinja2 template.
"""
from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import escape
from pydantic import BaseModel, Field

from api import problems
from api.fastpath import read_path
from api.deps import DbConn, _request_connection, get_key, scope
from registry.addresses import Page
from registry.doorplates import (
    KIND_NAMES,
    KeyRing,
    ScanCounter,
    activate_plate,
    check_printable_base_url,
    get_plate,
    issue_plates,
    list_reports,
    plate_code,
    plate_url,
    qr_png,
    qr_svg,
    replace_plate,
    resolve,
    revoke_plate,
    submit_report,
)
from registry.doorplates.reports import MAX_TEXT, REPORT_KIND_NAMES
from registry.divisions import AUTHORITY_HELP, match_code
from registry.doorplates.scans import UPSERT_SQL, upsert_params
from registry.doorplates.scans import today as scan_today
from registry.doorplates.tokens import LIVE_KEYS_SQL, InvalidSignature, InvalidToken
from registry.doorplates.tokens import parse as parse_token
from registry.doorplates.view import Scan, compose, dependencies
from registry.errors import InvalidQuery, NotFound, RegistryError
from registry.keys import ANONYMOUS, ApiKey
from registry.serving import ReadPath, Render
from registry.serving.scan import scan_row

try:  # markupsafe >= 3.0: the function its escape wraps (C when its speedups are built)
    from markupsafe import _escape_inner
except ImportError:  # an older markupsafe: its escape, as a str
    def _escape_inner(value: str) -> str:
        return str.__str__(escape(value))

router = APIRouter(tags=["doorplates"])

TEMPLATES = Environment(
    loader=FileSystemLoader(FsPath(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _distance(m: int | None) -> str:
    if m is None:
        return ""
    return f"{m} 米" if m < 1000 else f"{m / 1000:.1f} 公里"


TEMPLATES.filters["distance"] = _distance
SCAN_PAGE = TEMPLATES.get_template("doorplate_scan.html")


def _plain_escape(value: Any) -> str:
    """markupsafe.escape without its Markup wrapper: the same characters escaped, a plain str back.
    The scan page only yields what it escapes (or joins it into a `{% set %}` block, which Jinja
    wraps in Markup itself), and the wrapper's Python-level constructor, called some sixty times a
    page, was about 40 % of a render."""
    if type(value) is str:
        return _escape_inner(value)
    return escape(value)  # Markup (a set block) or anything else: markupsafe's own rule


# The name the compiled template calls for every `{{ … }}` under autoescape (one namespace for the
# template and its blocks).
SCAN_PAGE.root_render_func.__globals__["escape"] = _plain_escape


# --- per-app state: the key ring and the scan counter, opened and closed by the app's lifespan ----
def _ring(request: Request) -> KeyRing:
    return request.app.state.doorplate_keys


def _counter(request: Request) -> ScanCounter:
    return request.app.state.doorplate_scans


def _base_url(request: Request) -> str:
    return request.app.state.settings.public_base_url


def _caller(request: Request, conn) -> ApiKey:
    """The caller's key, read only when a key is sent (the anonymous scan skips the dependency)."""
    headers = request.headers
    x_api_key = headers.get("x-api-key")
    authorization = headers.get("authorization")
    if not x_api_key and not (authorization and authorization.lower().startswith("bearer ")):
        return ANONYMOUS
    return get_key(request, conn, x_api_key=x_api_key, authorization=authorization)


def _wants_html(request: Request) -> bool:
    return wants_html(request.headers.get("accept", ""))


def wants_html(accept: str) -> bool:
    """HTML for a browser (text/html accepted), JSON when asked for or when nothing is said."""
    if "application/json" in accept:
        return False
    return "text/html" in accept


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


# The scan page's media type and headers, as Starlette's HTMLResponse writes them (lower-case names):
# the route's responses and the renders of the fast path carry the same.
PAGE_MEDIA_TYPE = "text/html; charset=utf-8"
PAGE_HEADERS = (("cache-control", "no-store"), ("x-content-type-options", "nosniff"))


def _page_body(**ctx) -> bytes:
    return SCAN_PAGE.render(**ctx).encode()


def _page(status: int, **ctx) -> HTMLResponse:
    return HTMLResponse(_page_body(**ctx), status_code=status, headers=dict(PAGE_HEADERS))


def _ok_page(result: Scan, token: str, *, agency: bool, reported: bool) -> bytes:
    return _page_body(state="ok", d=result.body, token=token, agency=agency, reported=reported,
                      report_kinds=REPORT_KIND_NAMES, max_text=MAX_TEXT, kind_names=KIND_NAMES)


def ok_body(result: Scan, token: str, *, html: bool, reported: bool = False) -> bytes:
    """The public answer of a plate in service (`result.state == "ok"`): the JSON or the page. The
    scan store's build (api/scan_store.py) stores exactly these bytes."""
    if html:
        return _ok_page(result, token, agency=False, reported=reported)
    return orjson.dumps(result.body)


def ok_render(body: bytes, plate_id: int, *, html: bool) -> Render:
    if html:
        return Render(200, body, PAGE_MEDIA_TYPE, PAGE_HEADERS, plate_id)
    return Render(200, body, "application/json", (), plate_id)


_GONE_DETAIL = {
    "replaced": "此门牌已被替换 / this plate has been replaced",
    "revoked": "此门牌已注销 / this plate has been revoked",
    "suspended": "门牌所对应地址已注销 / the address of this plate has been retired",
}
# A suspended plate is genuine but its address is retired: 410 like a revoked plate, so that no
# client takes it for a valid address; its token keeps verifying and comes back with the address.
_GONE_TYPE = {"replaced": "plate-replaced", "revoked": "plate-revoked", "suspended": "address-retired"}


def _error_page(exc: RegistryError, token: str) -> HTMLResponse:
    state = "forged" if isinstance(exc, InvalidSignature) else "garbled" if isinstance(exc, InvalidToken) else "missing"
    return _page(problems.status_for(exc), state=state, token=token, message=exc.message)


# --- the scan ------------------------------------------------------------------------------------------
@router.get("/p/{token}", summary="Scan a doorplate's QR code: the plate's current address (HTML or JSON)",
            response_class=Response)
async def scan(request: Request,
               token: Annotated[str, Path(description="the signed token printed in the QR code")],
               reported: Annotated[bool, Query(description="show the thank-you note after a report")] = False,
               ) -> Response:
    fast = await read_path(request)
    if fast is not None:
        answer = await _scan_fast(request, fast, token, reported)
        if answer is not None:
            return answer
    return await run_in_threadpool(_scan, request, token, reported)


def _scan(request: Request, token: str, reported: bool) -> Response:
    # entered in the calling thread: the scan costs one hop to the thread pool instead of three
    with _request_connection(request) as conn:
        return _scan_in(request, conn, token, reported)


def _scan_in(request: Request, conn, token: str, reported: bool) -> Response:
    html = _wants_html(request)
    ring = _ring(request)
    try:
        parsed = ring.verify(conn, token)
        key = _caller(request, conn)
        agency = key.allows("agency")
        result = resolve(conn, parsed.plate_id, ring=ring, base_url=_base_url(request), agency=agency, token=token)
    except (InvalidToken, InvalidSignature, NotFound) as exc:
        if html:
            return _error_page(exc, token)
        raise
    _counter(request).hit(parsed.plate_id, conn)
    return _answer(request.url.path, result, token, html=html, agency=agency, reported=reported)


def _answer(path: str, result: Scan, token: str, *, html: bool, agency: bool, reported: bool) -> Response:
    if result.state == "ok":
        if html:
            return HTMLResponse(_ok_page(result, token, agency=agency, reported=reported),
                                headers=dict(PAGE_HEADERS))
        return _json(result.body)
    # replaced, revoked or suspended (address retired): answered as such, with the replacing plate
    if html:
        return _page(410, state=result.state, d=result.body, token=token, agency=agency,
                     replacement=result.replacement, kind_names=KIND_NAMES, reported=reported,
                     report_kinds=REPORT_KIND_NAMES, max_text=MAX_TEXT)
    extra: dict[str, Any] = {"plate_status": result.state, "plate": result.plate}
    if result.state == "suspended":
        extra["address_status"] = "retired"
        extra["address"] = {k: result.body["address"][k] for k in ("id", "text", "code", "status")}
    if result.replacement:
        extra["replaced_by"] = result.replacement
    if agency:
        extra["plate"] = result.body["plate"]
        extra["address"] = result.body["address"]
    detail = _GONE_DETAIL[result.state]
    if result.replacement:
        detail += f" (→ {result.replacement['code']})"
    return problems.problem(410, _GONE_TYPE[result.state], detail, path, **extra)


def _sends_key(request: Request) -> bool:
    authorization = request.headers.get("authorization")
    return bool(request.headers.get("x-api-key")) or bool(authorization and authorization.lower().startswith("bearer "))


def _render(response: Response, plate_id: int | None = None) -> Render:
    # the whole Content-Type (Starlette's charset rule applied once): render_response and the
    # hot-path front send it as it is
    return Render(response.status_code, bytes(response.body), response.headers.get("content-type", ""),
                  tuple((k, v) for k, v in response.headers.items() if k not in ("content-length", "content-type")),
                  plate_id)


def render_response(render: Render) -> Response:
    return Response(render.body, status_code=render.status, media_type=render.media_type,
                    headers=dict(render.headers))


async def _scan_fast(request: Request, fast: ReadPath, token: str, reported: bool) -> Response | None:
    """The public scan on the fast path (`public_scan`); None: an agency caller (the slow path shows more)."""
    key = getattr(request.state, "api_key", None)
    if key is None and _sends_key(request):
        return None  # not resolved yet by the app's dependency: the slow path checks it
    if key is not None and key.allows("agency"):
        return None  # agency views are never cached, nor mixed with public ones
    render = await public_scan(request.app, fast, token, html=_wants_html(request), reported=reported)
    return render_response(render)


async def public_scan(app, fast: ReadPath, token: str, *, html: bool, reported: bool) -> Render:
    """The public scan without a thread or a transaction: the token checked against the cached keys,
    the page from the render cache, else one prepared statement on the async pool (the primary's:
    the cache follows the primary's notifications). Called by the route and by the hot-path front
    (api/front.py); a JSON answer's error is raised (the app's problem handler answers it), an HTML
    one is the error page. The scan is counted once it is answered."""
    path = "/p/" + token
    variant = (path, html, reported)
    cache = fast.cache
    # Only a token that verified is ever cached, and a retired key drops every render (cache.py): a
    # render found needs no second HMAC.
    render = cache.get(variant)
    if render is None:
        render = await _scan_render(app, fast, token, variant, html=html, reported=reported)
        if render.plate_id is None:
            return render  # an error page: not counted
    counter: ScanCounter = app.state.doorplate_scans
    if counter.buffered:
        counter.hit(render.plate_id)
    else:
        await fast.pool.execute(UPSERT_SQL, upsert_params({(render.plate_id, scan_today()): 1})[0])
    return render


async def _hold_key(ring: KeyRing, fast: ReadPath, key_id: int | None) -> None:
    """The live signing keys read again (on the primary) when the ring does not hold `key_id` or is stale."""
    if ring.needs_load(key_id):
        ring.store(await fast.pool.fetchall(LIVE_KEYS_SQL, primary=True))


async def _scan_render(app, fast: ReadPath, token: str, variant, *, html: bool, reported: bool) -> Render:
    """A scan the render cache did not hold: the token verified, the row read and composed, the
    render stored (unless a change raced it). An error page comes back without a plate id."""
    ring: KeyRing = app.state.doorplate_keys
    path = variant[0]
    try:
        parsed = parse_token(token)
        await _hold_key(ring, fast, parsed.key_id)
        ring.check(parsed, ring.loaded_secret(parsed.key_id))
    except (InvalidToken, InvalidSignature) as exc:
        if html:
            return _render(_error_page(exc, token))
        raise
    cache = fast.cache
    epoch = cache.epoch
    row = await scan_row(fast, parsed.plate_id)
    if row is None:
        exc = NotFound(f"门牌 {plate_code(parsed.plate_id)} 不存在 / plate {parsed.plate_id} not found",
                       parameter="token")
        if html:
            return _render(_error_page(exc, token))
        raise exc
    store = fast.store
    if store is not None and not reported:  # the answer built ahead, when made of this very row (store.py)
        stored = store.answer(parsed.plate_id, row, token, html)
        if stored is not None:
            render = ok_render(stored, parsed.plate_id, html=html)
            cache.put(variant, render, dependencies(row), epoch)
            return render
    if row.get("successor"):  # the replacing plate's link is signed with its own key
        await _hold_key(ring, fast, row["successor"][1])
    result = compose(row, base_url=app.state.settings.public_base_url, token=token,
                     token_for=ring.loaded_token_for)
    # the common answers, as _answer would give them, without a Response
    if result.state == "ok":
        render = ok_render(ok_body(result, token, html=html, reported=reported), parsed.plate_id, html=html)
    else:
        render = _render(_answer(path, result, token, html=html, agency=False, reported=reported),
                         parsed.plate_id)
    cache.put(variant, render, dependencies(row), epoch)
    return render


class ReportIn(BaseModel):
    kind: str = Field(description="damaged, wrong, missing or faded")
    text: str | None = Field(default=None, description=f"what is wrong, at most {MAX_TEXT} characters")


def _report(conn, ring: KeyRing, token: str, kind: str | None, text: str | None) -> dict:
    parsed = ring.verify(conn, token)
    from registry.doorplates import get_plate_row

    row = get_plate_row(conn, parsed.plate_id, parameter="token")
    # a suspended plate still takes reports: "the door is still here" is what the office must hear
    if row["status"] not in ("issued", "active", "suspended"):
        raise NotFound("此门牌已停用，无需报告 / this plate is no longer in use", parameter="token",
                       plate_status=row["status"])
    return submit_report(conn, parsed.plate_id, kind, text)


@router.post("/p/{token}/report", summary="Report a problem with a plate (no personal data is stored)",
             status_code=201, response_class=Response,
             openapi_extra={"requestBody": {"content": {
                 "application/json": {"schema": ReportIn.model_json_schema()},
                 "application/x-www-form-urlencoded": {"schema": ReportIn.model_json_schema()}}}})
async def report(request: Request, conn: DbConn,
                 token: Annotated[str, Path(description="the signed token printed in the QR code")]) -> Response:
    ctype = request.headers.get("content-type", "")
    html = _wants_html(request) or ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))
    kind = text = None
    if ctype.startswith("application/json"):
        try:
            data = await request.json()
        except ValueError:
            raise InvalidQuery("请求体不是有效的 JSON / the body is not valid JSON", parameter="body") from None
        if not isinstance(data, dict):
            raise InvalidQuery("请求体应为 JSON 对象 / the body must be a JSON object", parameter="body")
        kind, text = data.get("kind"), data.get("text")
        html = False
    elif ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form(max_files=0, max_fields=10)
        kind, text = form.get("kind"), form.get("text")
    if text is not None and not isinstance(text, str):
        raise InvalidQuery("说明应为文字 / text must be a string", parameter="text")
    if kind is not None and not isinstance(kind, str):
        raise InvalidQuery("问题类型应为文字 / kind must be a string", parameter="kind")
    ring = _ring(request)
    try:
        saved = await run_in_threadpool(_report, conn, ring, token, kind, text)
    except (InvalidToken, InvalidSignature) as exc:
        if html:
            return _error_page(exc, token)
        raise
    if html:
        return RedirectResponse(f"/p/{token}?reported=true#report", status_code=303)
    return _json({"id": saved["id"], "kind": saved["kind"], "status": saved["status"],
                  "created_at": saved["created_at"]}, status=201)


# --- the office: reports, plates, QR codes, lifecycle ---------------------------------------------------
@router.get("/v1/doorplates/reports", summary="Problem reports on plates in a division (scope: editor)",
            dependencies=[scope("editor")])
def reports(
    conn: DbConn,
    division: Annotated[str, Query(description="division code (either authority)")],
    status: Annotated[str | None, Query(description="open (default), closed, or all")] = "open",
    limit: Annotated[int, Query(description="page size, 1–1000")] = 100,
    offset: Annotated[int, Query(description="rows to skip")] = 0,
    authority: Annotated[str | None, Query(description=AUTHORITY_HELP)] = None,
) -> Response:
    page = Page.of(limit, offset)
    resolved = match_code(conn, division, authority=authority, parameter="division")
    records, total = list_reports(conn, division, page, status=None if status == "all" else status,
                                  authority=authority)
    return _json({"division": resolved.as_dict(), "numberMatched": total, "numberReturned": len(records),
                  "reports": records})


class IssueIn(BaseModel):
    address_id: int | None = Field(default=None, description="one address")
    street_id: int | None = Field(default=None, description="every address on a street (place name id)")
    division: str | None = Field(default=None, description="every address in a division and below (code)")
    kind: str | None = Field(default=None, description="door, building, unit or flat (default: every kind)")
    authority: str | None = Field(default=None, description="with `division`: " + AUTHORITY_HELP)


@router.post("/v1/doorplates/issue", summary="Issue plates for an address, a street or a division "
             "(idempotent; scope: editor)", status_code=200)
def issue(conn: DbConn, body: IssueIn, key: ApiKey = scope("editor"),
          authority: Annotated[str | None, Query(description="with `division`: " + AUTHORITY_HELP
                                                 + " (or `authority` in the body)")] = None) -> dict:
    authority = authority or body.authority
    resolved = (match_code(conn, body.division, authority=authority, parameter="division")
                if body.division is not None else None)
    result = issue_plates(conn, actor=f"api:{key.agency}", address_id=body.address_id, street_id=body.street_id,
                          division=body.division, kind=body.kind, source="api", authority=authority)
    out = result.as_dict()
    if resolved is not None:
        out["division"] = resolved.as_dict()  # what the plates were issued for, by name
    return out


@router.get("/v1/doorplates/{plate_id}", summary="A plate with its status and history (scope: agency)",
            dependencies=[scope("agency")])
def plate(request: Request, conn: DbConn, plate_id: Annotated[int, Path(description="stable identifier")]) -> dict:
    out = get_plate(conn, plate_id)
    try:
        out["url"] = plate_url(conn, plate_id, ring=_ring(request), base_url=_base_url(request))
    except RegistryError:
        out["url"] = None
    return out


# QR images are downloaded to be printed: while REGISTRY_PUBLIC_BASE_URL is not public they are a
# 409 problem naming it, unless ?force_local_url=true (then an X-Doorplate-Warning header says so).
ForceLocalUrl = Annotated[bool, Query(description="serve the image even though REGISTRY_PUBLIC_BASE_URL is a "
                                                  "loopback, private or local address (for tests only)")]
LOCAL_URL_HEADER = "REGISTRY_PUBLIC_BASE_URL is not a public address: this QR code works only on this network"


def _printable_qr_url(request: Request, conn, plate_id: int, force: bool) -> tuple[str, dict[str, str]]:
    url = plate_url(conn, plate_id, ring=_ring(request), base_url=_base_url(request))  # 404 first
    warning = check_printable_base_url(_base_url(request), force=force, hint="?force_local_url=true")
    headers = {"X-Doorplate-Url": url}
    if warning:
        headers["X-Doorplate-Warning"] = LOCAL_URL_HEADER
    return url, headers


@router.get("/v1/doorplates/{plate_id}/qr.svg", summary="The plate's QR code as SVG (scope: editor; 409 while "
            "REGISTRY_PUBLIC_BASE_URL is not public)", dependencies=[scope("editor")], response_class=Response)
def plate_qr_svg(request: Request, conn: DbConn,
                 plate_id: Annotated[int, Path(description="stable identifier")],
                 force_local_url: ForceLocalUrl = False) -> Response:
    url, headers = _printable_qr_url(request, conn, plate_id, force_local_url)
    return Response(qr_svg(url), media_type="image/svg+xml", headers=headers)


@router.get("/v1/doorplates/{plate_id}/qr.png", summary="The plate's QR code as PNG (scope: editor; 409 while "
            "REGISTRY_PUBLIC_BASE_URL is not public)", dependencies=[scope("editor")], response_class=Response)
def plate_qr_png(request: Request, conn: DbConn,
                 plate_id: Annotated[int, Path(description="stable identifier")],
                 scale: Annotated[int, Query(ge=1, le=40, description="pixels per module")] = 8,
                 force_local_url: ForceLocalUrl = False) -> Response:
    url, headers = _printable_qr_url(request, conn, plate_id, force_local_url)
    return Response(qr_png(url, scale=scale), media_type="image/png", headers=headers)


@router.post("/v1/doorplates/{plate_id}/activate", summary="Mark a plate installed: issued → active "
             "(scope: editor)")
def activate(conn: DbConn, plate_id: Annotated[int, Path(description="stable identifier")],
             key: ApiKey = scope("editor")) -> dict:
    return activate_plate(conn, plate_id, actor=f"api:{key.agency}")


class ReasonIn(BaseModel):
    reason: str = Field(description="why (damaged, renumbered, stolen …), at most 200 characters")


@router.post("/v1/doorplates/{plate_id}/replace", summary="Replace a plate: a new plate for the same address; "
             "the old token then names it (scope: editor)")
def replace(conn: DbConn, plate_id: Annotated[int, Path(description="stable identifier")], body: ReasonIn,
            key: ApiKey = scope("editor")) -> dict:
    return replace_plate(conn, plate_id, reason=body.reason, actor=f"api:{key.agency}")


@router.post("/v1/doorplates/{plate_id}/revoke", summary="Revoke a plate for good (scope: editor)")
def revoke(conn: DbConn, plate_id: Annotated[int, Path(description="stable identifier")], body: ReasonIn,
           key: ApiKey = scope("editor")) -> dict:
    return revoke_plate(conn, plate_id, reason=body.reason, actor=f"api:{key.agency}")
