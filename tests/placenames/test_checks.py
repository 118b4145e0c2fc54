"""Naming checks for a proposed name: each rule with its reason in Chinese and English."""
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from loaders.cli import app
from registry.errors import InvalidQuery
from registry.placename_checks import check_name, standard_characters
from registry.settings import get_settings

AISHAN, ZHILI, NANXUN = "330502003", "330502100", "330503100"  # 爱山街道, 织里镇 (吴兴区); 南浔镇 (南浔区)


def _rules(result):
    return {f["rule"] for f in result["findings"]}


def _finding(result, rule):
    return next(f for f in result["findings"] if f["rule"] == rule)


def test_should_find_a_duplicate_of_the_same_category_in_the_same_county(conn, place):
    pid = place("苕溪路", AISHAN)
    result = check_name(conn, "苕溪路", category="road", division=ZHILI)  # another township, same county
    f = _finding(result, "duplicate")
    assert f["existing"]["id"] == pid and "重名" in f["reason_zh"] and "already has" in f["reason_en"]
    assert result["ok"] is False


def test_should_not_call_a_name_in_another_county_or_category_a_duplicate(conn, place):
    place("苕溪路", AISHAN)
    place("苕溪桥", AISHAN, category="bridge")
    assert "duplicate" not in _rules(check_name(conn, "苕溪路", category="road", division=NANXUN))
    assert "duplicate" not in _rules(check_name(conn, "苕溪桥", category="road", division=AISHAN))


def test_should_find_a_homophone_of_an_existing_name(conn, place):
    place("爱山路", AISHAN)
    f = _finding(check_name(conn, "艾山路", category="road", division=AISHAN), "homophone")
    assert "同音" in f["reason_zh"] and "sounds the same" in f["reason_en"] and f["existing"]["name"] == "爱山路"


def test_should_find_a_name_that_only_sounds_alike_as_a_warning(conn, place):
    place("湖山路", AISHAN)
    f = _finding(check_name(conn, "吴山路", category="road", division=AISHAN), "sound_alike")
    assert f["severity"] == "warning" and "音近" in f["reason_zh"]


def test_should_find_a_generic_that_does_not_fit_the_category(conn):
    result = check_name(conn, "幸福路", category="bridge", division=AISHAN)
    f = _finding(result, "generic_mismatch")
    assert "通名“路”与类别桥梁不符" in f["reason_zh"] and "does not fit the category bridge" in f["reason_en"]
    assert result["ok"] is False
    assert "generic_mismatch" not in _rules(check_name(conn, "幸福桥", category="bridge", division=AISHAN))


def test_should_find_a_character_outside_the_general_standard_table(conn):
    assert len(standard_characters()) == 8105
    result = check_name(conn, "鳳凰路", category="road", division=AISHAN)  # 鳳: the traditional form of 凤
    f = _finding(result, "nonstandard_character")
    assert "鳳" in f["reason_zh"] and "U+9CF3" in f["reason_en"]
    assert "nonstandard_character" not in _rules(check_name(conn, "霅溪路", category="road", division=AISHAN))


def test_should_find_a_name_that_repeats_a_division_name(conn):
    result = check_name(conn, "织里镇", category="compound", division=AISHAN)
    f = _finding(result, "repeats_division")
    assert f["severity"] == "error" and "织里镇" in f["reason_zh"] and "repeats the division" in f["reason_en"]
    warn = _finding(check_name(conn, "织里路", category="road", division=AISHAN), "repeats_division")
    assert warn["severity"] == "warning" and "专名" in warn["reason_zh"]


def test_should_pass_a_clean_name_and_romanize_it(conn):
    result = check_name(conn, "仁皇山路", category="道路", division=AISHAN)
    assert result["ok"] is True and result["romanized"] == "Renhuangshan Lu"


def test_should_refuse_an_empty_name_or_an_unknown_division(conn):
    with pytest.raises(InvalidQuery):
        check_name(conn, "  ", category="road", division=AISHAN)
    with pytest.raises(Exception) as exc:
        check_name(conn, "幸福路", category="road", division="330599999")
    assert getattr(exc.value, "parameter", None) == "division"


def test_should_check_through_the_api(client, place):
    place("爱山路", AISHAN)
    res = client.post("/v1/placenames/check", json={"name": "爱山路", "category": "道路", "division": AISHAN})
    assert res.status_code == 200 and {"duplicate"} <= _rules(res.json())
    bad = client.post("/v1/placenames/check", json={"name": "x", "category": "raod", "division": AISHAN})
    assert bad.status_code in (400, 422) and "category" in bad.text


@pytest.fixture()
def runner(database_url, monkeypatch, reference):
    monkeypatch.setenv("REGISTRY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_should_check_from_the_command_line_and_exit_1_on_an_error(runner):
    ok = runner.invoke(app, ["placenames", "check", "仁皇山路", "--category", "road", "--division", AISHAN])
    assert ok.exit_code == 0, ok.output and "Renhuangshan Lu" in ok.output
    bad = runner.invoke(app, ["placenames", "check", "幸福路", "--category", "bridge", "--division", AISHAN])
    assert bad.exit_code == 1 and "generic_mismatch" in bad.output and "通名" in bad.output


def test_should_romanize_from_the_command_line(runner):
    res = runner.invoke(app, ["placenames", "romanize", "衣裳街", "南浔", "--sign"])
    assert res.exit_code == 0 and "Yishang Jie\tYISHANG JIE" in res.output
