"""Spec of the pinyin keys, place-name romanization and homophone keys."""

import pytest

from registry.text import (homophone_key, pinyin_initials, pinyin_syllables, place_name_pinyin,
                           to_pinyin)


def test_should_give_one_toneless_syllable_per_character():
    assert pinyin_syllables("人民路") == ["ren", "min", "lu"]


def test_should_pass_digits_and_latin_through_as_tokens():
    assert pinyin_syllables("人民路12号A座") == ["ren", "min", "lu", "12", "hao", "a", "zuo"]


def test_should_drop_spaces_and_punctuation():
    assert pinyin_syllables("人民 路，") == ["ren", "min", "lu"]


@pytest.mark.parametrize("name, syllables", [
    ("长兴县", ["chang", "xing", "xian"]),
    ("长安", ["chang", "an"]),
    ("长春", ["chang", "chun"]),
    ("长田村", ["chang", "tian", "cun"]),
    ("长兴县长超村", ["chang", "xing", "xian", "chang", "chao", "cun"]),
    ("荻港村", ["di", "gang", "cun"]),
    ("南浔区", ["nan", "xun", "qu"]),
    ("苕溪", ["tiao", "xi"]),
    ("霅溪", ["zha", "xi"]),
    ("朝阳街道", ["chao", "yang", "jie", "dao"]),
    ("便民路", ["bian", "min", "lu"]),
    ("5幢", ["5", "zhuang"]),
    ("单家村", ["shan", "jia", "cun"]),
])
def test_should_read_place_name_heteronyms_as_place_names(name, syllables):
    assert pinyin_syllables(name) == syllables


def test_should_keep_zhang_for_a_rank():
    assert pinyin_syllables("校长") == ["xiao", "zhang"]


def test_should_write_u_umlaut_as_v_in_search_keys():
    assert to_pinyin("吕山乡") == "lvshanxiang"


@pytest.mark.parametrize("text, joined, initials", [
    ("人民路", "renminlu", "rml"),
    ("爱山街道", "aishanjiedao", "asjd"),
    ("长兴县", "changxingxian", "cxx"),
    ("人民路12号", "renminlu12hao", "rml12h"),
])
def test_should_join_syllables_and_initials(text, joined, initials):
    assert to_pinyin(text) == joined
    assert pinyin_initials(text) == initials


@pytest.mark.parametrize("name, romanized", [
    ("人民路", "Renmin Lu"),
    ("爱山街道", "Aishan Jiedao"),
    ("月河街道", "Yuehe Jiedao"),
    ("飞英街道", "Feiying Jiedao"),
    ("雉城街道", "Zhicheng Jiedao"),
    ("吴兴区", "Wuxing Qu"),
    ("南浔区", "Nanxun Qu"),
    ("德清县", "Deqing Xian"),
    ("长兴县", "Changxing Xian"),
    ("安吉县", "Anji Xian"),
    ("湖州市", "Huzhou Shi"),
    ("和孚镇", "Hefu Zhen"),
    ("新市镇", "Xinshi Zhen"),
    ("练市镇", "Lianshi Zhen"),
    ("凤凰小区", "Fenghuang Xiaoqu"),
    ("荻港村", "Digang Cun"),
    ("浮星桥社区", "Fuxingqiao Shequ"),
    ("凤凰大道", "Fenghuang Dadao"),
    ("朝阳新村", "Chaoyang Xincun"),
    ("苕溪路", "Tiaoxi Lu"),
])
def test_should_write_specific_and_generic_as_separate_words(name, romanized):
    assert place_name_pinyin(name) == romanized


@pytest.mark.parametrize("name, romanized", [
    ("解放北路", "Jiefang Beilu"),
    ("人民东路", "Renmin Donglu"),
    ("中山北路", "Zhongshan Beilu"),
    ("凤凰西大道", "Fenghuang Xidadao"),
])
def test_should_join_a_directional_to_the_road_generic(name, romanized):
    assert place_name_pinyin(name) == romanized


@pytest.mark.parametrize("name, romanized", [
    ("城北路", "Chengbei Lu"),
    ("江南路", "Jiangnan Lu"),
    ("湖东街道", "Hudong Jiedao"),
])
def test_should_keep_a_directional_that_is_part_of_a_short_specific(name, romanized):
    assert place_name_pinyin(name) == romanized


def test_should_join_an_ordinal_to_the_village_generic():
    assert place_name_pinyin("吉山一村") == "Jishan Yicun"


@pytest.mark.parametrize("name, romanized", [("西安路", "Xi'an Lu"), ("长安镇", "Chang'an Zhen"), ("下昂", "Xia'ang")])
def test_should_put_an_apostrophe_before_a_o_e_syllables(name, romanized):
    assert place_name_pinyin(name) == romanized


def test_should_keep_digits():
    assert place_name_pinyin("5幢") == "5 Zhuang"


def test_should_write_u_umlaut_in_romanization():
    assert place_name_pinyin("吕山乡") == "Lüshan Xiang"


def test_should_write_a_natural_village_as_one_word():
    assert place_name_pinyin("钱家浜", natural_village=True) == "Qianjiabang"


def test_should_write_a_name_without_generic_as_one_word():
    assert place_name_pinyin("莫干") == "Mogan"


def test_should_romanize_empty_text_as_empty():
    assert place_name_pinyin("  ") == ""


@pytest.mark.parametrize("a, b", [
    ("艾山", "爱山"),          # plain homophones
    ("人敏", "人民"),
    ("长兴", "常兴"),
    ("爱山", "爱删"),          # sh / s
    ("朝阳", "曹阳"),          # ch / c, via 朝 chao
    ("织里", "紫里"),          # zh / z
    ("南浔", "兰浔"),          # n / l
    ("凤凰", "奉环"),          # -ng / -n and hu / w
    ("湖州", "吴州"),          # Wu: hu / wu
    ("黄家", "王家"),          # Wu: huang / wang
    ("吕山", "女山"),          # lv / nv
])
def test_should_collide_homophones_and_usual_confusions(a, b):
    assert homophone_key(a) == homophone_key(b)


@pytest.mark.parametrize("a, b", [("爱山", "月河"), ("人民", "人马"), ("吴兴", "吴江")])
def test_should_keep_different_sounds_apart(a, b):
    assert homophone_key(a) != homophone_key(b)


def test_should_keep_digits_in_the_homophone_key():
    assert homophone_key("人民路12号") == "renminlu12hao"
