"""Routes: boundary lines and markers."""
from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["boundary lines and markers"])
