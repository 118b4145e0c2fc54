"""Township codes the two authorities gave to different townships, over HTTP (issue 8, item 1).

NBS 2023 330502007 is 康山街道, MCA 2025 330502007 is 湖东街道 (whose NBS code is 330502013). Every
endpoint that takes a division code refuses such a code without `authority` (409, both readings as
`candidates`), acts on the named reading with it and says which division it acted on.
"""
import pytest
from sqlalchemy import text

AMBIGUOUS = "330502007"  # NBS: 康山街道, MCA: 湖东街道
KANGSHAN_NBS, HUDONG_NBS = "330502007", "330502013"  # (MCA 330502013 is 杨家埠街道: ambiguous too)
AISHAN = "330502003"  # 爱山街道 under both authorities


def _assert_refused_naming_both(r, parameter="division"):
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"].endswith("ambiguous-code") and body["parameter"] == parameter
    assert {(c["authority"], c["name"]) for c in body["candidates"]} == {("nbs2023", "康山街道"),
                                                                         ("mca2025", "湖东街道")}
    assert "康山街道" in body["detail"] and "湖东街道" in body["detail"] and "authority" in body["detail"]


# --- /v1/divisions/{code} ---------------------------------------------------------------------------------
def test_should_refuse_an_ambiguous_township_code_when_looking_up_a_division(client):
    _assert_refused_naming_both(client.get(f"/v1/divisions/{AMBIGUOUS}"), parameter="code")


@pytest.mark.parametrize("authority, name", [("nbs2023", "康山街道"), ("mca2025", "湖东街道")])
def test_should_read_an_ambiguous_township_code_by_the_authority_given(client, authority, name):
    body = client.get(f"/v1/divisions/{AMBIGUOUS}", params={"authority": authority}).json()
    assert body["name"] == name and body["matched"] == {"code": AMBIGUOUS, "authority": authority}


def test_should_resolve_codes_the_authorities_agree_on_or_only_one_has_without_an_authority(client):
    assert client.get(f"/v1/divisions/{AISHAN}").json()["name"] == "爱山街道"
    assert client.get("/v1/divisions/330502").json()["name"] == "吴兴区"  # 6 digits: never ambiguous
    village = client.get("/v1/divisions/330502007001").json()  # 12 digits: NBS only, under 康山街道
    assert village["parents"][-1]["name"] == "康山街道" and village["matched"]["authority"] == "nbs2023"
    mca_only = client.get("/v1/divisions/330502103").json()  # an MCA 2025 code the NBS never used
    assert mca_only["matched"]["authority"] == "mca2025"


def test_should_refuse_an_unknown_authority_naming_the_valid_ones(client):
    r = client.get(f"/v1/divisions/{AMBIGUOUS}", params={"authority": "nbs"})
    assert r.status_code == 400
    assert r.json()["parameter"] == "authority" and "nbs2023" in r.json()["detail"]


def test_should_not_find_a_code_under_an_authority_that_never_used_it(client):
    r = client.get("/v1/divisions/330502103", params={"authority": "nbs2023"})
    assert r.status_code == 404 and "nbs2023" in r.json()["detail"]


def test_should_say_no_two_reference_readings_agree_on_a_6_or_12_digit_code(conn):
    # the ambiguity is a township matter in Huzhou: checked on the loaded reference data
    rows = conn.execute(text("""
        SELECT a.mca_code FROM divisions a JOIN divisions b ON b.nbs_code = a.mca_code AND b.id <> a.id
    """)).scalars().all()
    assert rows and all(len(code) == 9 for code in rows)
    assert len(rows) == 16


# --- /v1/addresses?division= --------------------------------------------------------------------------
def test_should_refuse_an_ambiguous_township_code_when_listing_addresses(client, township_address):
    township_address(KANGSHAN_NBS)
    _assert_refused_naming_both(client.get("/v1/addresses", params={"division": AMBIGUOUS}))


def test_should_list_the_addresses_of_the_township_the_authority_names(client, township_address):
    kangshan = township_address(KANGSHAN_NBS)
    hudong = township_address(HUDONG_NBS)
    for authority, expected, name in (("nbs2023", kangshan, "康山街道"), ("mca2025", hudong, "湖东街道")):
        body = client.get("/v1/addresses", params={"division": AMBIGUOUS, "authority": authority}).json()
        assert [f["id"] for f in body["features"]] == [expected]
        assert body["division"]["name"] == name and body["division"]["authority"] == authority


def test_should_list_addresses_by_an_unambiguous_code_and_name_the_division(client, township_address):
    aishan = township_address(AISHAN)
    body = client.get("/v1/addresses", params={"division": AISHAN}).json()
    assert [f["id"] for f in body["features"]] == [aishan]
    assert body["division"]["name"] == "爱山街道"


# --- /v1/search and /v1/search/structured (division=) -------------------------------------------------
@pytest.fixture()
def search_client(conn, engine, app_settings, township_address):
    """The API with a gazetteer read from the test's transaction: 人民路1号 in 康山街道 and 湖东街道."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import get_conn
    from api.routes.search import get_gazetteer
    from registry.search import StaticSource
    from registry.search.loading import load_gazetteer

    ids = {"康山街道": township_address(KANGSHAN_NBS, 1), "湖东街道": township_address(HUDONG_NBS, 1),
           "爱山街道": township_address(AISHAN, 1)}
    gaz = load_gazetteer(conn)
    app = create_app(app_settings, engine=engine)

    def _conn():
        yield conn

    app.dependency_overrides[get_conn] = _conn
    app.dependency_overrides[get_gazetteer] = lambda: StaticSource(gaz)
    with TestClient(app) as c:
        c.ids = ids
        yield c


SEARCHES = [("/v1/search", {"q": "人民路1号"}), ("/v1/search/structured", {"street": "人民路", "number": "1号"})]


@pytest.mark.parametrize("path, params", SEARCHES)
def test_should_refuse_an_ambiguous_township_code_when_searching(search_client, path, params):
    _assert_refused_naming_both(search_client.get(path, params={**params, "division": AMBIGUOUS}))


@pytest.mark.parametrize("path, params", SEARCHES)
@pytest.mark.parametrize("authority, name", [("nbs2023", "康山街道"), ("mca2025", "湖东街道")])
def test_should_search_inside_the_township_the_authority_names(search_client, path, params, authority, name):
    body = search_client.get(path, params={**params, "division": AMBIGUOUS, "authority": authority}).json()
    assert body["division"]["name"] == name and body["division"]["authority"] == authority
    found = [r["id"] for r in body["results"] if r.get("kind") == "address"]
    assert found and set(found) == {search_client.ids[name]}


def test_should_search_inside_a_township_by_an_unambiguous_code(search_client):
    body = search_client.get("/v1/search", params={"q": "人民路1号", "division": AISHAN}).json()
    assert body["division"]["name"] == "爱山街道"
    assert {r["id"] for r in body["results"] if r.get("kind") == "address"} == {search_client.ids["爱山街道"]}


def test_should_refuse_an_unknown_authority_when_searching(search_client):
    r = search_client.get("/v1/search", params={"q": "人民路1号", "division": AMBIGUOUS, "authority": "MCA"})
    assert r.status_code == 400 and r.json()["parameter"] == "authority"
