"""ASGI entry point for uvicorn: `uvicorn api.main:app`."""
import logging

from api.app import create_app
from registry.settings import get_settings

logging.basicConfig(level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
