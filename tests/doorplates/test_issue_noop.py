"""`plates issue` is idempotent, and a run that issues nothing records nothing: no change set, no
audit entry, and the command says "nothing to issue"."""

from sqlalchemy import text
from typer.testing import CliRunner

from cli_engine import on_test_connection
from registry.doorplates import issue_plates


def _counts(conn):
    return conn.execute(text("SELECT (SELECT count(*) FROM change_sets), (SELECT count(*) FROM audit_log), "
                             "(SELECT count(*) FROM doorplates)")).one()


def test_should_record_no_change_set_when_nothing_is_left_to_issue(conn, make_address, place):
    make_address(number="12号")
    first = issue_plates(conn, actor="tests", division=place.village_code)
    assert first.issued == 1 and first.change_set_id is not None
    before = _counts(conn)

    again = issue_plates(conn, actor="tests", division=place.village_code)

    assert again.change_set_id is None and again.issued == 0 and again.already == 1
    assert _counts(conn) == before


def test_should_record_a_change_set_only_for_what_is_new(conn, make_address, place):
    make_address(number="12号")
    issue_plates(conn, actor="tests", division=place.village_code)
    make_address(number="14号")
    result = issue_plates(conn, actor="tests", division=place.village_code)
    assert result.issued == 1 and result.already == 1 and result.change_set_id is not None
    counts = conn.execute(text("SELECT counts FROM change_sets WHERE id = :i"), {"i": result.change_set_id}).scalar_one()
    assert counts["issued"] == 1 and counts["already_issued"] == 1


def test_should_say_nothing_to_issue_on_the_command_line(conn, make_address, place, monkeypatch):
    from loaders import plates_cli

    make_address(number="12号")
    issue_plates(conn, actor="tests", division=place.village_code)

    on_test_connection(monkeypatch, conn, plates_cli)
    before = _counts(conn)
    out = CliRunner().invoke(plates_cli.plates_app, ["issue", "--division", place.village_code])
    assert out.exit_code == 0, out.output
    assert "nothing to issue" in out.output and "无需签发" in out.output
    assert _counts(conn) == before
