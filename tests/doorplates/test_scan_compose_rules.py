"""The shortcuts the scan's compose and the facility grid take are the rules they replace, exactly:
the navigation name quoted from a per-character table is urllib's quote, the coordinates read back
from their printed form are round(x, 6), and the grid's candidates sought block by block give the
12 nearest (and the tie flag) that every facility sorted by distance gives."""
import math
import random
from urllib.parse import quote

import pytest

from registry.doorplates.nearby import _metres_from
from registry.doorplates.plates import plate_code
from registry.doorplates.view import NEAREST_FACILITIES, SERVICE_CATEGORIES, nearest_services, quote_all
from registry.serving.reference import TIE_RELATIVE, FacilityGrid
from registry.text import compose_address

ODD = ["", " ", "a b", "100%", "a/b?c=d&e#f", "~-._", "A-Za-z0-9", "".join(map(chr, range(128))),
       "ＡＢＣ１２３", "é", "e\u0301", "😀门牌", "\U00020000\U0003134f", "\u3000", "\ufeff", "\x00", "𠀀路12号"]


def test_should_quote_as_urllib_quotes():
    rng = random.Random(3)
    texts = list(ODD)
    for _ in range(300):  # standard addresses, the navigation links' label
        texts.append(compose_address(county=rng.choice(["吴兴区", "南浔区", "德清县"]), township="爱山街道",
                                     street=rng.choice(["人民路", "凤凰大道", None]),
                                     compound=rng.choice(["凤凰小区", None]), number=rng.randint(1, 999),
                                     building=rng.choice([None, 5, "A幢"]), unit=rng.choice([None, 2]),
                                     room=rng.choice([None, 301, "B302"]), village="荻港村委会"))
    for _ in range(500):  # any code point but surrogates
        texts.append("".join(chr(rng.choice([rng.randrange(0x20, 0x7f), rng.randrange(0x80, 0xd800),
                                             rng.randrange(0xe000, 0x110000)])) for _ in range(rng.randrange(12))))
    for text in texts:
        assert quote_all(text) == quote(text, safe=""), text
    with pytest.raises(UnicodeEncodeError):
        quote("门\ud800", safe="")
    with pytest.raises(UnicodeEncodeError):
        quote_all("门\ud800")


def test_should_read_back_round_6_from_the_printed_coordinate():
    rng = random.Random(4)
    values = [rng.uniform(100, 130) for _ in range(50_000)] + [rng.uniform(-1, 1) for _ in range(5_000)]
    values += [k / 1e6 + 5e-7 for k in range(120_000_000, 120_020_000)]  # halfway, as written in decimal
    assert all(round(x, 6) == float(f"{x:.6f}") for x in values)


def _all_sorted(grid: FacilityGrid, lon: float, lat: float):
    """Today's rule on every facility: (distance, index) sorted, the 12th and 13th tie to PostGIS."""
    near = sorted((math.hypot(x - lon, y - lat), i) for i, (x, y) in enumerate(zip(grid.xs, grid.ys)))
    if len(near) > NEAREST_FACILITIES:
        last, after = near[NEAREST_FACILITIES - 1][0], near[NEAREST_FACILITIES][0]
        if after - last <= TIE_RELATIVE * after:
            return False, None
    return True, [grid.items[i] for _, i in near[:NEAREST_FACILITIES]]


def test_should_find_among_the_blocks_what_all_the_facilities_give():
    rng = random.Random(5)
    towns = [(rng.uniform(119.3, 120.5), rng.uniform(30.4, 31.1), rng.uniform(0.002, 0.05)) for _ in range(30)]
    spots: list[tuple[float, float]] = []
    for i in range(1200):
        x, y, spread = towns[i % len(towns)]
        spot = (rng.gauss(x, spread), rng.gauss(y, spread)) if i % 7 else (rng.uniform(119, 121), rng.uniform(30, 31.5))
        spots.append(spots[rng.randrange(len(spots))] if spots and rng.random() < 0.05 else spot)  # co-located
    rows = [(i, "儿童之家", f"f{i}", None, None, x, y) for i, (x, y) in enumerate(spots)]
    grid = FacilityGrid(rows)
    points = [(rng.gauss(x, s * 3), rng.gauss(y, s * 3)) for x, y, s in (rng.choice(towns) for _ in range(400))]
    points += [(rng.uniform(118.5, 121.5), rng.uniform(29.5, 32)) for _ in range(150)]  # far out too
    points += rng.sample(spots, 60)  # on a facility: ties
    for lon, lat in points:
        assert grid.nearest(lon, lat) == _all_sorted(grid, lon, lat), (lon, lat)
    assert len(grid._blocks) < len(grid._cells)


def _first_of_each_category(lon, lat, candidates):
    """The rule nearest_services keeps: every shown facility's metres, sorted with the facility, the
    first of each category."""
    shown = [c for c in candidates if c[0] in SERVICE_CATEGORIES]
    out, seen = [], set()
    for d, c in sorted(zip(_metres_from(lon, lat, shown), shown)):
        if c[0] not in seen:
            seen.add(c[0])
            out.append({"category": c[0], "name": c[1], "address": c[2], "phone": c[3], "distance_m": d,
                        "location": [round(c[4], 6), round(c[5], 6)]})
    return out


def test_should_pass_over_only_facilities_that_cannot_be_the_nearest_of_their_category():
    rng = random.Random(6)
    categories = list(SERVICE_CATEGORIES) + ["救助站"]
    for _ in range(3000):
        lon, lat = rng.uniform(119.2, 120.6), rng.uniform(30.3, 31.2)
        spread = rng.choice([0.0005, 0.005, 0.05, 0.5, 3.0])
        candidates = []  # (a missing address or phone in such a tie: the next test)
        for k in range(12):
            if candidates and rng.random() < 0.15:  # co-located, or the same distance mirrored
                x, y = candidates[-1][4], candidates[-1][5]
                if rng.random() < 0.5:
                    x = 2 * lon - x
            else:
                x, y = rng.gauss(lon, spread), rng.gauss(lat, spread)
            candidates.append([rng.choice(categories), f"设施{k % 4}", rng.choice(["地址", "地址乙"]), "0572", x, y])
        rng.shuffle(candidates)
        assert nearest_services(lon, lat, candidates) == _first_of_each_category(lon, lat, candidates)


def test_should_answer_a_tie_of_two_facilities_one_without_an_address_or_phone():
    # the same category, metres and name: the old rule compared None with a text there (a 500 for a scan)
    lon, lat = 120.09, 30.89
    with_all = ["婚姻登记处", "登记处", "人民路1号", "0572-1", lon + 0.001, lat]
    without = ["婚姻登记处", "登记处", None, None, lon - 0.001, lat]  # mirrored: the same metres
    for candidates in ([with_all, without], [without, with_all]):
        shown = nearest_services(lon, lat, candidates)
        assert len(shown) == 1 and shown[0]["address"] is None and shown[0]["phone"] is None  # a missing one first
    only_phone = ["婚姻登记处", "登记处", "人民路1号", None, lon - 0.001, lat]
    assert nearest_services(lon, lat, [with_all, only_phone])[0]["phone"] is None


def _code_by_loop(plate_id: int) -> str:
    n, digits = plate_id, []
    while n:
        n, r = divmod(n, 32)
        digits.append("0123456789ABCDEFGHJKMNPQRSTVWXYZ"[r])
    return "".join(reversed(digits)).rjust(6, "0") + ("0123456789ABCDEFGHJKMNPQRSTVWXYZ" + "*~$=U")[plate_id % 37]


def test_should_write_a_plate_code_from_digit_pairs_as_digit_by_digit():
    rng = random.Random(7)
    ids = [0, 1, 31, 32, 1023, 1024, 12345, (1 << 30) - 1, 1 << 30, (1 << 40) + 5]
    ids += [rng.randrange(1 << 31) for _ in range(20_000)]
    assert [plate_code(i) for i in ids] == [_code_by_loop(i) for i in ids]
