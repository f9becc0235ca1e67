"""The one error type a user sees: printed as a single line, exit status 2."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input the user can fix.

    Rendered as ``<file>:<row>: <what> (<fix>)``; file, row and fix are optional.
    """

    def __init__(
        self,
        what: str,
        *,
        file: str | Path | None = None,
        row: int | str | None = None,
        fix: str | None = None,
    ):
        self.what, self.file, self.row, self.fix = what, file, row, fix
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:" + (f"{self.row}:" if self.row is not None else "") + " "
        return where + self.what + (f" ({self.fix})" if self.fix else "")
