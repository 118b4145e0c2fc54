"""The two authorities of division codes and the one rule for naming them.

The NBS (国家统计局 2023 统计用区划代码) and the MCA (民政部 2025 行政区划代码) codes mostly agree,
but 16 township codes were given to different townships. Every `authority` parameter (API) and
`--authority` / `--code-authority` option (CLI) takes one of `AUTHORITIES`, checked here. A module
of its own (no database imports) so that the command line can build its options without loading
SQLAlchemy; registry.divisions, where code lookups live, uses and exports the same names.
"""
from __future__ import annotations

from registry.errors import InvalidQuery

AUTHORITIES = ("mca2025", "nbs2023")  # in the order a code is read: the civil-affairs code first
# The help of every `authority` parameter (API) and `--authority` option (CLI).
AUTHORITY_HELP = ("nbs2023 or mca2025: which authority's code this is. Needed only for the 16 township codes "
                  "the two authorities gave to different townships (NBS 330502007 is 康山街道, MCA 330502007 "
                  "is 湖东街道): without it such a code is refused, naming both")
AUTHORITY_NAMES = {"nbs2023": "国家统计局 2023 统计用区划代码 / NBS 2023",
                   "mca2025": "民政部 2025 行政区划代码 / MCA 2025"}


def validate_authority(authority: str | None, parameter: str = "authority") -> str | None:
    """None (either authority) or one of `AUTHORITIES`; anything else is refused, never guessed."""
    if authority is None:
        return None
    value = authority.strip().lower()
    if value not in AUTHORITIES:
        raise InvalidQuery(
            f"{parameter} 应为 nbs2023 或 mca2025 / {parameter} must be nbs2023 or mca2025, got {authority!r}",
            parameter=parameter,
        )
    return value
