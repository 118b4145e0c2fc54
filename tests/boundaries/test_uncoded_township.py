"""A township without a code (the state before the real adjustments, whose old codes the sources do
not give) cannot get a line code: derivation refuses by name instead of failing inside."""
import pytest
from sqlalchemy import text

from registry.boundaries import derive_boundary_lines
from registry.errors import Conflict


def test_should_refuse_to_code_the_lines_of_a_township_without_a_code(conn):
    a, b = conn.execute(text("""
        SELECT id FROM divisions WHERE level = 'township' AND status = 'active'
        ORDER BY nbs_code LIMIT 2""")).scalars().all()
    # two neighbouring squares, the second without any code
    conn.execute(text("""
        UPDATE divisions SET geom = ST_Multi(ST_MakeEnvelope(:x0, 30.80, :x1, 30.90, 4490))
        WHERE id = :id"""), [{"id": a, "x0": 120.00, "x1": 120.10}, {"id": b, "x0": 120.10, "x1": 120.20}])
    conn.execute(text("UPDATE divisions SET nbs_code = NULL, mca_code = NULL WHERE id = :id"), {"id": b})
    name = conn.execute(text("SELECT name FROM divisions WHERE id = :id"), {"id": b}).scalar_one()
    before = conn.execute(text("SELECT count(*) FROM boundary_lines")).scalar_one()
    with pytest.raises(Conflict) as err:
        derive_boundary_lines(conn, level="township", actor="tests")
    assert name in err.value.message and "registry adjust observed" in err.value.message
    assert conn.execute(text("SELECT count(*) FROM boundary_lines")).scalar_one() == before
