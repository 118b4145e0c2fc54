"""Text layer of the registry: normalization, numerals, doorplate numbers,
pinyin and standard address text.

Pure Python (pypinyin, OpenCC); no web, database or GIS imports, so the
loader, the search engine and the doorplate pages can all use it.
"""

from .address_text import GENERICS, Component, compose_address, split_generic, tokenize_address
from .errors import (InvalidAddressPart, InvalidBuilding, InvalidGroup, InvalidHouseNumber,
                     InvalidNumeral, InvalidRoom, InvalidText, InvalidUnit)
from .house_number import (HouseNumber, parse_building, parse_group, parse_house_number,
                           parse_room, parse_unit)
from .normalize import fold_village_suffix, normalize, to_simplified, village_name_variants
from .numerals import chinese_to_int, replace_number_numerals
from .pinyin import (fold_syllable, homophone_key, pinyin_initials, pinyin_syllables, place_name_pinyin,
                     to_pinyin)

__all__ = [
    "GENERICS", "Component", "HouseNumber",
    "InvalidAddressPart", "InvalidBuilding", "InvalidGroup", "InvalidHouseNumber",
    "InvalidNumeral", "InvalidRoom", "InvalidText", "InvalidUnit",
    "chinese_to_int", "compose_address", "fold_syllable", "fold_village_suffix", "homophone_key", "normalize",
    "parse_building", "parse_group", "parse_house_number", "parse_room", "parse_unit",
    "pinyin_initials", "pinyin_syllables", "place_name_pinyin", "replace_number_numerals",
    "split_generic", "to_pinyin", "to_simplified", "tokenize_address", "village_name_variants",
]
