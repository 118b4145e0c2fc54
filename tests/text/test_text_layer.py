"""The text layer stays pure: what it imports, what it raises, what it exports."""

import ast
import sys
from pathlib import Path

import pytest

import registry.text
from registry.text import errors

TEXT_DIR = Path(registry.text.__file__).parent
ALLOWED_THIRD_PARTY = {"pypinyin", "opencc"}
ALLOWED_OWN = {"registry.text", "registry.errors"}  # the text layer sits under the domain's errors only


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


@pytest.mark.parametrize("path", sorted(TEXT_DIR.glob("*.py")), ids=lambda p: p.name)
def test_should_import_only_the_standard_library_pypinyin_opencc_and_domain_errors(path):
    foreign = {name for name in _imports(path)
               if name.split(".")[0] not in sys.stdlib_module_names
               and name.split(".")[0] not in ALLOWED_THIRD_PARTY
               and not any(name == own or name.startswith(own + ".") for own in ALLOWED_OWN)}
    assert not foreign, f"{path.name} imports {foreign}"


@pytest.mark.parametrize("path", sorted(TEXT_DIR.glob("*.py")), ids=lambda p: p.name)
def test_should_keep_modules_small(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) < 400


@pytest.mark.parametrize("name", [
    "InvalidNumeral", "InvalidHouseNumber", "InvalidBuilding", "InvalidUnit",
    "InvalidRoom", "InvalidGroup", "InvalidAddressPart",
])
def test_should_derive_every_error_from_one_value_error_base(name):
    cls = getattr(errors, name)
    assert issubclass(cls, errors.InvalidText) and issubclass(cls, ValueError)


def test_should_write_error_messages_in_chinese_and_english():
    message = str(errors.InvalidRoom("厨房", "不是室号的写法", "not a room number"))
    assert message == "无效的室号：“厨房”（不是室号的写法） / invalid room number: '厨房' (not a room number)"


@pytest.mark.parametrize("name", registry.text.__all__)
def test_should_export_the_public_api(name):
    assert getattr(registry.text, name) is not None
