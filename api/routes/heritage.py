"""The place-name cultural heritage catalogue (地名文化遗产保护名录)."""
from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["heritage"])
