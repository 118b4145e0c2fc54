"""Romanization of real place names by the 1984 rules, the polyphonic readings table, the sign form."""
import pytest

from registry.text import place_name_pinyin
from registry.text.romanization import readings, romanize, sign_form


@pytest.mark.parametrize("name, romanized", [("人民路", "Renmin Lu"), ("太湖路", "Taihu Lu"),
                                             ("衣裳街", "Yishang Jie"), ("仁皇山路", "Renhuangshan Lu")])
def test_should_write_specific_and_generic_apart(name, romanized):
    assert romanize(name) == romanized


def test_should_join_a_one_syllable_modifier_to_the_generic():
    assert romanize("景山后街") == "Jingshan Houjie"
    assert romanize("解放北路") == "Jiefang Beilu"
    assert romanize("城北路") == "Chengbei Lu"  # the direction belongs to a two-character specific


@pytest.mark.parametrize("name, romanized", [("王村", "Wangcun"), ("周口店", "Zhoukoudian"),
                                             ("钱家浜", "Qianjiabang"), ("南浔", "Nanxun")])
def test_should_write_natural_villages_and_towns_as_one_word(name, romanized):
    assert romanize(name, one_word=True) == romanized
    assert romanize(name, category="natural_village") == romanized


def test_should_treat_a_generic_that_became_part_of_the_name_as_specific():
    assert romanize("景德镇市") == "Jingdezhen Shi"


def test_should_join_a_personal_name():
    assert romanize("中山路") == "Zhongshan Lu"


def test_should_write_numbers_in_names_as_pinyin_but_ordinals_and_codes_in_arabic():
    assert romanize("三八路") == "Sanba Lu"
    assert romanize("经五路") == "Jing 5 Lu"
    assert romanize("经5路") == "Jing 5 Lu"
    assert romanize("第九弄") == "9 Nong"


def test_should_put_an_apostrophe_before_a_o_e():
    assert romanize("西安路") == "Xi'an Lu"


def test_should_capitalise_each_word_and_give_the_all_capitals_sign_form():
    assert romanize("南浔区") == "Nanxun Qu"
    assert sign_form(romanize("人民路")) == "RENMIN LU"


@pytest.mark.parametrize("name, romanized", [("十里堡", "Shilipu"), ("乐清市", "Yueqing Shi"),
                                             ("重庆市", "Chongqing Shi"), ("六安市", "Lu'an Shi"),
                                             ("长兴县", "Changxing Xian"), ("南浔镇", "Nanxun Zhen")])
def test_should_read_polyphonic_characters_from_the_place_name_dictionary(name, romanized):
    assert romanize(name, one_word=name == "十里堡") == romanized


def test_should_keep_a_source_for_every_reading():
    table = readings()
    assert {"十里堡", "南浔", "乐清", "重庆"} <= {r.phrase for r in table}
    assert all(r.source for r in table)
    assert all(len(r.syllables) == len(r.phrase) for r in table)


def test_should_let_a_per_name_override_win():
    assert romanize("行头村", override="Hangtou Cun") == "Hangtou Cun"


def test_should_romanize_through_the_search_layer_function_too():
    assert place_name_pinyin("衣裳街") == "Yishang Jie"
    assert place_name_pinyin("钱家浜", natural_village=True) == "Qianjiabang"
