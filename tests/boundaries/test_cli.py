"""`registry derive boundaries|markers` on the loaded city: a re-run says "unchanged"."""
import pytest
from typer.testing import CliRunner

from loaders.cli import app
from registry.settings import get_settings

from .conftest import CITY_SEED


@pytest.fixture()
def runner(city, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATABASE_URL", city.url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.mark.parametrize("level", ["county", "township"])
def test_should_say_unchanged_when_the_lines_are_derived_again(runner, level):
    result = runner.invoke(app, ["derive", "boundaries", "--level", level])
    assert result.exit_code == 0, result.output
    assert f"{level} boundary lines unchanged" in result.output


def test_should_say_unchanged_when_the_markers_are_derived_again(runner):
    result = runner.invoke(app, ["derive", "markers", "--seed", str(CITY_SEED)])
    assert result.exit_code == 0, result.output
    assert "markers unchanged" in result.output


def test_should_refuse_an_unknown_level_naming_it(runner):
    result = runner.invoke(app, ["derive", "boundaries", "--level", "village"])
    assert result.exit_code != 0 and "level must be county or township" in result.output
