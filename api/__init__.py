"""The HTTP adaptor: a thin FastAPI layer over the `registry` domain library."""
from api.app import create_app

__all__ = ["create_app"]
