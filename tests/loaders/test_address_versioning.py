"""Idempotent loads, versioning of changed rows, retiring, corrections by id, dry runs, and the
change set and audit trail of a load."""
from __future__ import annotations

from sqlalchemy import text

from loader_helpers import BOX_A, IN_A, IN_B, VILLAGE_A, VILLAGE_B, addr, flat, load, registry_state, write_csv

SURVEY = [addr(number="1号"), addr(number="2号", lon=IN_A[0] + 0.0002), flat(room="101室"), flat(room="102室"),
          {"division_code": VILLAGE_B, "natural_village": "钱家浜", "group": "3组", "number": "5号",
           "lon": IN_B[0], "lat": IN_B[1]}]


def _address(conn, number="1号"):
    return conn.execute(text("SELECT * FROM addresses WHERE number = :n"), {"n": number}).mappings().one()


def test_should_change_nothing_when_the_same_file_is_loaded_twice(conn, world, tmp_path):
    path = write_csv(tmp_path / "survey.csv", SURVEY)
    first = load(conn, path)
    assert first.inserted == 5 and first.change_set_id is not None
    before = registry_state(conn)
    second = load(conn, path)
    assert second.unchanged == second.read == 5
    assert (second.inserted, second.updated, second.retired, second.rejected) == (0, 0, 0, 0)
    assert second.noop and second.change_set_id is None  # nothing changed: no change set either
    assert registry_state(conn) == before


def test_should_record_one_applied_change_set_with_counts_source_checksum_and_audit(conn, world, tmp_path):
    path = write_csv(tmp_path / "survey.csv", SURVEY + [addr(number="坏")])
    report = load(conn, path, source="吴兴区2026年普查", actor="张三", reason="年度普查")
    cs = conn.execute(text("SELECT * FROM change_sets WHERE id = :id"), {"id": report.change_set_id}).mappings().one()
    assert cs["kind"] == "load_addresses" and cs["status"] == "applied" and cs["author"] == "张三"
    assert cs["source"] == "吴兴区2026年普查" and cs["reason"] == "年度普查"
    assert cs["checksum"] == report.checksum and len(cs["checksum"]) == 64
    assert cs["counts"]["inserted"] == 5 and cs["counts"]["rejected"] == 1 and cs["counts"]["read"] == 6
    assert cs["details"]["file"] == "survey.csv" and cs["details"]["crs"] == "EPSG:4490"
    actions = [r[0] for r in conn.execute(text("SELECT action FROM audit_log WHERE change_set_id = :id ORDER BY id"),
                                          {"id": report.change_set_id})]
    assert actions == ["load_addresses.open", "change_set.applied"]
    stamped = conn.execute(text("SELECT count(*) FROM addresses WHERE change_set_id = :id AND source = :s"),
                           {"id": report.change_set_id, "s": "吴兴区2026年普查"}).scalar_one()
    assert stamped == 5


def test_should_close_the_old_version_and_open_a_new_one_for_a_changed_row(conn, world, tmp_path):
    load(conn, write_csv(tmp_path / "a.csv", SURVEY))
    old = _address(conn)
    moved = [dict(r) for r in SURVEY]
    moved[0]["lon"] = IN_A[0] + 0.00005  # ~5 m east
    report = load(conn, write_csv(tmp_path / "b.csv", moved))
    assert (report.updated, report.unchanged, report.inserted) == (1, 4, 0)
    new = _address(conn)
    assert new["id"] == old["id"] and new["version"] == 2 and new["code"] == old["code"]
    assert new["change_set_id"] == report.change_set_id
    history = conn.execute(text("SELECT version, valid_to, ST_X(geom) AS x, change_set_id FROM addresses_history "
                                "WHERE id = :id"), {"id": old["id"]}).mappings().all()
    assert len(history) == 1 and history[0]["version"] == 1 and history[0]["valid_to"] == new["valid_from"]
    assert history[0]["x"] == IN_A[0] and history[0]["change_set_id"] == old["change_set_id"]


def test_should_retire_what_a_full_re_survey_no_longer_lists_only_in_its_villages(conn, world, tmp_path):
    load(conn, write_csv(tmp_path / "a.csv", SURVEY))
    only_a = [r for r in SURVEY if r["division_code"] == VILLAGE_A and r.get("number") != "2号"]
    report = load(conn, write_csv(tmp_path / "b.csv", only_a), retire_missing=True)
    assert report.retired == 1 and report.unchanged == 3
    statuses = dict(conn.execute(text("SELECT full_text, status FROM addresses")).all())
    assert statuses["浙江省湖州市吴兴区爱山街道人民路2号"] == "retired"
    assert statuses["浙江省湖州市吴兴区爱山街道衣裳街社区钱家浜3组5号"] == "active"  # VILLAGE_B is not in the file
    retired = _address(conn, "2号")
    assert retired["version"] == 2
    # it reappears in the next survey: reactivated under the same id, never a new one
    again = load(conn, write_csv(tmp_path / "c.csv", SURVEY))
    assert again.updated == 1 and _address(conn, "2号")["id"] == retired["id"]
    assert _address(conn, "2号")["status"] == "active"


def test_should_not_retire_by_default(conn, world, tmp_path):
    load(conn, write_csv(tmp_path / "a.csv", SURVEY))
    report = load(conn, write_csv(tmp_path / "b.csv", SURVEY[:1]))
    assert report.retired == 0 and report.unchanged == 1
    assert conn.execute(text("SELECT count(*) FROM addresses WHERE status = 'active'")).scalar_one() == 5


def test_should_not_retire_in_a_village_where_a_row_could_not_be_read(conn, world, tmp_path):
    load(conn, write_csv(tmp_path / "a.csv", SURVEY))
    typo = [addr(number="1号"), addr(number="二号码")]  # 2号 mistyped: unreadable, not missing
    report = load(conn, write_csv(tmp_path / "b.csv", typo), retire_missing=True)
    assert report.retired == 0 and report.rejected == 1 and any("retiring skipped" in n for n in report.notes)


def test_should_keep_an_address_whose_row_was_refused_for_its_point(conn, world, tmp_path):
    load(conn, write_csv(tmp_path / "a.csv", SURVEY[:2]))
    bad_point = [addr(number="1号"), addr(number="2号", lon=BOX_A[2] + 0.003)]  # 2号 now outside its village
    report = load(conn, write_csv(tmp_path / "b.csv", bad_point), retire_missing=True)
    assert report.rejected == 1 and report.retired == 0
    assert _address(conn, "2号")["status"] == "active" and _address(conn, "2号")["version"] == 1


def test_should_match_a_row_by_its_id_and_correct_its_number(conn, world, tmp_path):
    load(conn, write_csv(tmp_path / "a.csv", SURVEY))
    old = _address(conn, "1号")
    report = load(conn, write_csv(tmp_path / "b.csv", [addr(id=old["id"], number="1甲号")]))
    assert report.updated == 1 and report.inserted == 0
    new = conn.execute(text("SELECT * FROM addresses WHERE id = :id"), {"id": old["id"]}).mappings().one()
    assert new["number"] == "1甲号" and new["full_text"].endswith("人民路1甲号") and new["code"] == old["code"]


def test_should_give_a_moved_address_a_code_in_its_new_village_and_keep_the_old_one_resolving(conn, world, tmp_path):
    load(conn, write_csv(tmp_path / "a.csv", SURVEY))
    old = _address(conn, "1号")
    moved = addr(id=old["id"], division_code=VILLAGE_B, lon=IN_B[0] + 0.0003, lat=IN_B[1])
    report = load(conn, write_csv(tmp_path / "b.csv", [moved]))
    assert report.updated == 1, report.issues
    new = conn.execute(text("SELECT * FROM addresses WHERE id = :id"), {"id": old["id"]}).mappings().one()
    assert new["code"].startswith(VILLAGE_B) and new["code"] == VILLAGE_B + "00000002"
    from registry.addresses import resolve_address_code

    assert resolve_address_code(conn, old["code"]) == old["id"]


def test_should_allocate_codes_after_the_highest_in_each_village(conn, world, tmp_path):
    load(conn, write_csv(tmp_path / "a.csv", SURVEY))
    load(conn, write_csv(tmp_path / "b.csv", [addr(number="99号", lon=IN_A[0] + 0.0004)]))
    codes = sorted(r[0] for r in conn.execute(text("SELECT code FROM addresses WHERE code LIKE :p"),
                                              {"p": VILLAGE_A + "%"}))
    assert codes == [f"{VILLAGE_A}{n:08d}" for n in range(1, 6)]


def test_should_write_nothing_on_a_dry_run_but_report_the_counts(conn, world, tmp_path):
    before = registry_state(conn)
    report = load(conn, write_csv(tmp_path / "a.csv", SURVEY + [addr(number="坏")]), dry_run=True)
    assert report.dry_run and report.inserted == 5 and report.rejected == 1 and report.change_set_id is None
    assert registry_state(conn) == before


def test_should_load_two_files_of_different_villages_in_one_transaction(conn, world, tmp_path):
    a = load(conn, write_csv(tmp_path / "a.csv", SURVEY[:4]))
    b = load(conn, write_csv(tmp_path / "b.csv", SURVEY[4:]))
    assert a.inserted == 4 and b.inserted == 1 and a.change_set_id != b.change_set_id
