"""Reverse geocoding on the async read path: the answer of `registry.search.reverse.reverse`,
with the nearest address from memory where that is exact (registry.search.nearest).

The API's reverse (the FastAPI route and the hot-path front, api/front.py) answers through
`reverse_answer` and nowhere else.
"""
from __future__ import annotations

from registry.search.reverse import reverse_async


async def reverse_answer(path, search, lon: float, lat: float, radius: float) -> dict:
    """`search`: the app's SearchService (its gazetteer's address columns, once loaded), or None."""
    store = search.get().addresses if search is not None and search.ready else None
    return await reverse_async(path.pool, lon, lat, radius, nearest=path.nearest_for(store))
