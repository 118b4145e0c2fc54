"""The heritage catalogue seeded with the real facts (data/reference/heritage_huzhou.csv)."""
import pytest

from loaders.heritage_cli import seed_reference


@pytest.fixture()
def seeded(conn):
    report, problems = seed_reference(conn, actor="tests")
    return report, problems
