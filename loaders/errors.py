"""File-level errors: the file as a whole cannot be loaded (nothing is written)."""
from __future__ import annotations

from registry.errors import InvalidQuery


class FileError(InvalidQuery):
    """A file that cannot be read as a whole: unreadable, empty, malformed, no CRS, bad mapping…

    `reason` is a stable code (empty_file, malformed_csv, line_too_long, bad_encoding, no_crs,
    unknown_crs, unreadable_file, unsupported_format, missing_columns, bad_mapping, no_layer,
    file_not_found); the message is Chinese then English.
    """

    code = "invalid-file"

    def __init__(self, reason: str, zh: str, en: str, **details) -> None:
        super().__init__(f"{zh} / {en}", parameter="file", reason=reason, **details)
        self.reason = reason
