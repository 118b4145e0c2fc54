"""The marker numbering rule (registry.markers) and the line code rule (registry.boundaries)."""
import pytest

from registry.boundaries import line_code, line_name
from registry.errors import InvalidQuery
from registry.markers import MarkerNumber, is_marker_number, marker_number, parse_marker_number


def test_should_build_a_line_code_from_both_division_codes_smaller_first():
    assert line_code("county", "330503", "330502") == "330502330503"
    assert line_code("county", "330502", "330503") == "330502330503"
    assert line_code("township", "330503101", "330502003") == "330502003330503101"


def test_should_give_an_outer_edge_line_the_county_code_and_zeros_for_the_unknown_neighbour():
    assert line_code("county", "330522", None) == "330522000000"
    assert line_code("township", "330522101", None) == "330522101000000000"


def test_should_refuse_a_code_of_the_wrong_width_for_the_level():
    with pytest.raises(InvalidQuery, match="9"):
        line_code("township", "330502", "330503")


def test_should_name_a_line_after_both_divisions_and_the_outer_edge_after_the_city_boundary():
    assert line_name("吴兴区", "南浔区") == "吴兴区—南浔区线"
    assert line_name("长兴县", None) == "长兴县—市界线"


def test_should_number_a_marker_as_line_code_serial_and_type_letter():
    assert marker_number("330502330503", 7, "Q") == "330502330503007Q"
    assert marker_number("330502003330503101", 12, "A") == "330502003330503101012A"


@pytest.mark.parametrize("number", ["330502330503007Q", "330502330503001C", "330502003330503101999E"])
def test_should_read_back_every_number_it_builds(number):
    parsed = parse_marker_number(number)
    assert isinstance(parsed, MarkerNumber) and str(parsed) == number
    assert marker_number(parsed.line_code, parsed.serial, parsed.letter) == number


def test_should_read_the_parts_and_kind_of_a_pair_marker():
    assert parse_marker_number("330502330503012B") == MarkerNumber("330502330503", 12, "B")
    assert parse_marker_number("330502330503012B").kind == "同号双立"


@pytest.mark.parametrize("bad", ["", "330502330503007", "330502330503007X", "330502330503000Q", "33050233050307Q",
                                 "3305023305030071Q", "330502330503007q", None])
def test_should_refuse_a_malformed_marker_number_naming_the_field(bad):
    with pytest.raises(InvalidQuery) as err:
        parse_marker_number(bad)
    assert err.value.parameter == "number" and "界桩编号" in err.value.message
    assert not is_marker_number(bad)


@pytest.mark.parametrize("args, field", [(("33050", 1, "Q"), "line_code"), (("330502330503", 0, "Q"), "serial"),
                                         (("330502330503", 1000, "Q"), "serial"), (("330502330503", 1, "F"), "type_letter")])
def test_should_refuse_to_build_a_number_the_rule_does_not_allow(args, field):
    with pytest.raises(InvalidQuery) as err:
        marker_number(*args)
    assert err.value.parameter == field
