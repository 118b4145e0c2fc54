"""What the HTML scan page costs to render (issue 11): Jinja's own escape against the page's, in one run.

    .venv/bin/python bench/bench_scan_page.py --database-url postgresql+psycopg://registry@127.0.0.1:55432/registry_city_full

Real plates of the database (`--plates`, random, issued or active) are read and composed as a scan
does (`view.fetch_row`, `view.compose`); then each page is rendered with the template's escape as
Jinja sets it (`markupsafe.escape`, a Markup made per `{{ … }}`) and as api/routes/doorplates.py
sets it (`_plain_escape`, the same characters escaped into a plain str), and encoded to the bytes
the scan sends. Printed: CPU µs a page for each (best of `--passes`, alternating), their ratio, and
whether every page came out byte for byte the same. Read only.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default="postgresql+psycopg://registry@127.0.0.1:55432/registry_city_full")
    ap.add_argument("--plates", type=int, default=2000)
    ap.add_argument("--passes", type=int, default=5)
    args = ap.parse_args()

    from markupsafe import escape
    from sqlalchemy import create_engine, text

    from api.routes import doorplates as route
    from registry.doorplates.view import compose, fetch_row

    engine = create_engine(args.database_url)
    with engine.begin() as conn:
        ids = conn.execute(text("SELECT id FROM doorplates WHERE status IN ('issued', 'active') "
                                "ORDER BY random() LIMIT :n"), {"n": args.plates}).scalars().all()
        results = [compose(fetch_row(conn, pid), base_url="https://dz.huzhou.gov.cn", token="T" * 24,
                           token_for=lambda pid, key: "T" * 24) for pid in ids]
    engine.dispose()
    if not results:
        raise SystemExit("no issued plates in the database: `registry plates issue` first")
    names = route.SCAN_PAGE.root_render_func.__globals__

    def one_pass(escape_fn) -> tuple[float, list[bytes]]:
        names["escape"] = escape_fn
        t = time.process_time()
        pages = [route._ok_page(r, "T" * 24, agency=False, reported=False) for r in results]
        return (time.process_time() - t) / len(results) * 1e6, pages

    plain = route._plain_escape
    best = {"jinja": float("inf"), "page": float("inf")}
    same = True
    for _ in range(args.passes):
        before, pages_before = one_pass(escape)
        after, pages_after = one_pass(plain)
        best["jinja"], best["page"] = min(best["jinja"], before), min(best["page"], after)
        same = same and pages_before == pages_after
    names["escape"] = plain
    size = sum(map(len, pages_after)) / len(pages_after)
    print(f"{len(results):,} real plates, pages of {size:,.0f} bytes on average, best of {args.passes} passes")
    print(f"render + encode, markupsafe.escape (Jinja's): {best['jinja']:6.1f} µs a page")
    print(f"render + encode, _plain_escape (the page's):  {best['page']:6.1f} µs a page "
          f"({best['page'] / best['jinja']:.2f}× of Jinja's)")
    print(f"every page byte for byte the same: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
