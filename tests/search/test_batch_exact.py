"""Batch matching answers every row as the engine does (registry.search.batch.answers against
match_rows: the engine row by row), whatever path the row takes: the exact path for standard
texts, de-duplication, the engine in worker processes; and the body is read as it arrives."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from registry.search.batch import answers, match_rows, parse_body
from registry.search.batch_exact import exact_answers
from registry.search.batch_input import RowReader
from registry.text.normalize import is_normal, normalize

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from search_queries import CLASSES, Generator  # noqa: E402  (the bench's own query generator)


def _rows(gaz) -> tuple[list[str], set[str]]:
    """The stored texts (whole, without 浙江省湖州市, without 浙江省), rows of every error class of
    the bench, rows that must not be read exactly, and repeats."""
    s = gaz.addresses
    rng = random.Random(4)
    texts = [s.text(i)[1] for i in range(0, len(s.ids), 3)]
    rows = texts + [t[6:] for t in texts[::5]] + [t[3:] for t in texts[::7]]
    bench = Generator(gaz, seed=5).generate(8)
    rows += [q.q for q in bench]
    rows += [t.replace("号", "號") for t in texts[:20]] + [t + "附近" for t in texts[:20]]
    rows += [t[:8] for t in texts[:10]] + ["", " ", "不存在的地方1号", "x" * 300, "吴兴区人民路一百二十三号"]
    rows += rng.sample(rows, 300)  # repeated rows
    rng.shuffle(rows)
    return rows, {q.cls for q in bench}


def test_should_answer_every_row_as_the_engine_does(city_gaz):
    rows, classes = _rows(city_gaz)
    assert classes >= set(CLASSES) - {"former", "division_former"}
    expected = list(match_rows(city_gaz, rows))
    assert list(answers(city_gaz, rows, processes=1)) == expected
    assert list(answers(city_gaz, rows, processes=2)) == expected  # the engine rows in worker processes


def test_should_take_the_exact_path_for_most_standard_texts_and_only_for_them(city_gaz):
    s = city_gaz.addresses
    texts = [s.text(i)[1] for i in range(len(s.ids))]
    found = exact_answers(city_gaz, texts)
    assert len(found) >= 0.8 * len(texts)
    assert all(a["id"] == int(s.ids[j]) for j, a in found.items())
    with_door = [t for t in texts if "号" in t][:50]
    assert len(with_door) == 50
    assert not exact_answers(city_gaz, [t.replace("号", "號") for t in with_door] + [t[:8] for t in texts[:50]])


def test_should_say_a_text_is_normal_only_when_normalize_keeps_it(city_gaz):
    s = city_gaz.addresses
    texts = [s.text(i)[1] for i in range(len(s.ids))]
    texts += ["人民路12号幢", "五一路5号", "人民路十二号", "人民路12-1号", "人民路-1号", "乾元镇1号", "人民路附近1号",
              "第5幢", "5栋", "吴興區1号", "人民路1号 ", "人民路1号〇", "一二三", "五幢二单元", "12--3"]
    for t in texts:
        if is_normal(t):
            assert normalize(t) == t, t
    assert is_normal("五一路5号") and not is_normal("人民路十二号") and not is_normal("吴興區1号")


@pytest.mark.parametrize("chunk", [1, 7, 4096])
@pytest.mark.parametrize("charset", ["utf-8", "gbk", None])
def test_should_read_the_rows_as_they_arrive_as_from_the_whole_body(chunk, charset):
    text = '地址,备注\n吴兴区人民路123号,"两行\n的备注"\n"带,逗号的地址",x\n凤凰小区5幢\r\n\n最后一行'
    body = text.encode(charset or "gb18030")
    ctype = f"text/csv; charset={charset}" if charset else "text/csv"
    reader = RowReader(ctype)
    for k in range(0, len(body), chunk):
        reader.feed(body[k:k + chunk])
    assert reader.finish() == parse_body(body, ctype) == (
        ["吴兴区人民路123号", "带,逗号的地址", "凤凰小区5幢", "", "最后一行"], "csv")
    jl = '"人民路1号"\n\n{"address": "凤凰小区"}\n{"q": 5}\n'.encode(charset or "gb18030")
    reader = RowReader("application/x-ndjson" + (f"; charset={charset}" if charset else ""))
    for k in range(0, len(jl), chunk):
        reader.feed(jl[k:k + chunk])
    assert reader.finish() == (["人民路1号", "凤凰小区", ""], "jsonl")


def test_should_name_the_line_of_bytes_that_do_not_decode_when_read_in_pieces():
    from registry.errors import InvalidQuery

    body = "地址\n湖州市\n人民路\n".encode() + b"\xff\xfe\n" + "凤凰\n".encode()
    reader = RowReader("text/csv; charset=utf-8")
    with pytest.raises(InvalidQuery) as err:
        for k in range(0, len(body), 3):
            reader.feed(body[k:k + 3])
        reader.finish()
    assert err.value.details["line"] == 4
    # without a charset: a UTF-8 list with one GBK line is refused at that line, as a whole body is
    body = "地址\n湖州市\n".encode() + "人民路".encode("gbk") + b"\n"
    reader = RowReader("text/csv")
    reader.feed(body)
    with pytest.raises(InvalidQuery) as err2:
        reader.finish()
    with pytest.raises(InvalidQuery) as err3:
        parse_body(body, "text/csv")
    assert err2.value.message == err3.value.message


def test_should_answer_rows_the_overlay_changed_as_the_engine_does(city):
    """A standard text changed or retired since the load: the exact path leaves it to the engine,
    which reads the overlay first."""
    from sqlalchemy import text

    from registry.search import apply_changes
    from registry.search.loading import load_gazetteer

    with city.engine.connect() as conn:
        trans = conn.begin()  # rolled back: the city database stays as loaded
        try:
            gaz = load_gazetteer(conn, text_keys=True)
            s = gaz.addresses
            renamed, retired, kept = (int(s.ids[i]) for i in (10, 20, 30))
            old = {aid: s.text(s.row_of_id(aid))[1] for aid in (renamed, retired, kept)}
            conn.execute(text("UPDATE addresses SET full_text = replace(full_text, '号', '号附') WHERE id = :a"),
                         {"a": renamed})
            conn.execute(text("UPDATE addresses SET status = 'retired' WHERE id = :a"), {"a": retired})
            apply_changes(gaz, conn, {"addresses": {renamed, retired}})
            new = conn.execute(text("SELECT full_text FROM addresses WHERE id = :a"), {"a": renamed}).scalar()
        finally:
            trans.rollback()
    rows = [old[renamed], new, old[retired], old[kept], old[kept][6:]]
    expected = list(match_rows(gaz, rows))
    assert list(answers(gaz, rows, processes=1)) == expected
    assert expected[3]["id"] == kept and expected[2]["id"] != retired
