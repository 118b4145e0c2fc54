"""ASGI entry point for uvicorn: `uvicorn api.main:app` (what `registry serve` runs).

Bad settings stop the process here with one line per variable on stderr and exit code 2, as the
`registry` command does, and a missing database with one line and exit code 1, instead of a
traceback from inside uvicorn's import or the app's start-up.
"""
import sys

from registry.db.engine import require_database, resolve_database_url
from registry.errors import RegistryError, SettingsError
from registry.settings import get_settings

try:
    settings = get_settings()
    require_database(settings, resolve_database_url(settings))
except SettingsError as exc:
    print("\n".join(exc.lines), file=sys.stderr)  # noqa: T201 (the process has no logging yet)
    raise SystemExit(2) from None
except RegistryError as exc:
    print(f"错误 / error: {exc}", file=sys.stderr)  # noqa: T201
    raise SystemExit(1) from None

from api.app import create_app  # noqa: E402  (after the checks: a bad setting must not build the app)
from registry.log_setup import configure as configure_logging  # noqa: E402

configure_logging(settings.log_level, hold_seconds=settings.log_hold_seconds)
app = create_app(settings)
