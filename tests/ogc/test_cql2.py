"""Basic CQL2-text → SQL: every value a bound parameter, attributes from the collection only."""
from __future__ import annotations

import pytest

from registry.errors import InvalidQuery
from registry.features.collections import COLLECTIONS
from registry.features.cql2 import compile_filter

ADDRESSES = COLLECTIONS["addresses"]


def test_should_bind_every_value_and_quote_only_known_attributes():
    sql, params = compile_filter("""street = 'O''Brien路' AND "number_main" >= 12 OR NOT (room IS NOT NULL)""",
                                 ADDRESSES)
    assert sql == ('((f."street" = :cql_0) AND (f."number_main" >= :cql_1)) OR (NOT (f."room" IS NOT NULL))'
                   .join("()"))
    assert params == {"cql_0": "O'Brien路", "cql_1": 12}
    assert "Brien" not in sql


def test_should_read_like_in_and_timestamps_case_insensitively():
    sql, params = compile_filter("address not like '%湖州%' and status in ('active', 'planned') "
                                 "and valid_from > timestamp('2026-01-01T00:00:00Z')", ADDRESSES)
    assert "NOT LIKE" in sql and "IN (:cql_1, :cql_2)" in sql and "f.\"valid_from\" > :cql_3" in sql
    assert params["cql_3"].year == 2026 and params["cql_3"].tzinfo is not None


@pytest.mark.parametrize("cql", ["", "street", "street = ", "street == 'a'", "1 = 1", "origin = 'x'",
                                 "number_main > 'x'", "street IN ()", "street LIKE 5", "street = 'a' AND",
                                 "valid_from > TIMESTAMP('soon')", "street = 'a') OR (1", "street = \"a\"",
                                 "x" * 5000])
def test_should_refuse_a_malformed_or_foreign_filter_naming_the_parameter(cql):
    with pytest.raises(InvalidQuery) as err:
        compile_filter(cql, ADDRESSES)
    assert err.value.parameter == "filter"
