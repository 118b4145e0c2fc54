"""ASGI entry point for uvicorn: `uvicorn api.main:app` (what `registry serve` runs).

Bad settings stop the process here with one line per variable on stderr and exit code 2, as the
`registry` command does, instead of a pydantic traceback from inside uvicorn's import.
"""
import logging
import sys

from registry.errors import SettingsError
from registry.settings import get_settings

try:
    settings = get_settings()
except SettingsError as exc:
    print("\n".join(exc.lines), file=sys.stderr)  # noqa: T201 (the process has no logging yet)
    raise SystemExit(2) from None

from api.app import create_app  # noqa: E402  (after the settings: a bad one must not import the app)

logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app(settings)
