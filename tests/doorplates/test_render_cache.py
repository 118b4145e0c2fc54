"""The render cache of public plate pages (registry/serving/cache.py), on its own: what a change
drops, what eviction forgets, and that what it holds costs the cyclic collector nothing."""
from __future__ import annotations

import gc

from registry.serving.cache import Render, RenderCache


def _cache(max_entries: int = 100) -> RenderCache:
    cache = RenderCache(max_entries)
    cache.listening = True
    return cache


def _put(cache: RenderCache, plate_id: int, address_id: int, *, html: bool = False) -> tuple:
    key = (f"/p/token{plate_id}", html, False)
    render = Render(200, b'{"plate": %d}' % plate_id, "application/json", (("cache-control", "no-store"),), plate_id)
    assert cache.put(key, render, {("doorplates", plate_id), ("addresses", address_id)}, cache.epoch)
    return key


def test_should_give_back_the_render_it_was_given():
    cache = _cache()
    key = _put(cache, 7, 70)
    assert cache.get(key) == Render(200, b'{"plate": 7}', "application/json", (("cache-control", "no-store"),), 7)


def test_should_drop_only_the_renders_made_of_a_changed_row():
    cache = _cache()
    json_7, html_7 = _put(cache, 7, 70), _put(cache, 7, 70, html=True)
    other = _put(cache, 8, 80)
    cache.apply("addresses:70,999")
    assert cache.get(json_7) is None and cache.get(html_7) is None
    assert cache.get(other) is not None
    cache.apply("doorplates:8")
    assert cache.get(other) is None and len(cache) == 0


def test_should_forget_the_rows_of_an_evicted_render():
    cache = _cache(max_entries=2)
    first = _put(cache, 1, 10)
    _put(cache, 2, 20)
    _put(cache, 3, 30)  # evicts the first, the least recently used
    assert cache.get(first) is None and len(cache) == 2
    assert ("addresses", 10) not in cache._by_row and ("doorplates", 1) not in cache._by_row
    cache.apply("addresses:20")
    assert len(cache) == 1 and set(cache._by_row) == {("doorplates", 3), ("addresses", 30)}


def test_should_drop_every_render_of_a_compound_and_keep_the_others():
    # a compound's or a street's plates share its place-name row: 2,400 plates in the largest
    cache = _cache(max_entries=3000)
    flats = []
    for plate_id in range(1, 2401):
        key = (f"/p/flat{plate_id}", False, False)
        render = Render(200, b"{}", "application/json", (), plate_id)
        assert cache.put(key, render, {("doorplates", plate_id), ("place_names", 42)}, cache.epoch)
        flats.append(key)
    other = _put(cache, 9000, 90)
    cache._discard(flats[0])  # evicted alone: the compound's other renders stay indexed
    cache.apply("doorplates:2")
    assert len(cache) == 2399
    cache.apply("place_names:42")
    assert len(cache) == 1 and cache.get(other) is not None
    assert set(cache._by_row) == {("doorplates", 9000), ("addresses", 90)}


def test_should_refuse_a_render_read_before_a_change():
    cache = _cache()
    epoch = cache.epoch
    cache.apply("addresses:70")  # committed while the scan read its row
    render = Render(200, b"{}", "application/json", (), 7)
    assert not cache.put(("/p/t", False, False), render, {("addresses", 70)}, epoch)
    assert len(cache) == 0


def test_should_hold_renders_the_cyclic_collector_does_not_walk():
    # A serving worker holds 50,000 renders: held as tracked objects, each full collection walked
    # them all (a pause of 100-250 ms for every request in flight).
    cache = _cache(max_entries=1000)
    for plate_id in range(1000):
        _put(cache, plate_id, 10_000 + plate_id, html=bool(plate_id % 2))
    gc.collect(1)  # the young generations' passes, as a worker's allocations trigger them
    held = list(cache._entries.items()) + list(cache._by_row.items())
    tracked = [obj for pair in held for obj in pair if gc.is_tracked(obj)]
    assert tracked == []
