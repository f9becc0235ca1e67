"""Label sheets (.xlsx, .xls, .csv): find the header row and read the rows under it as text.

Header rows are found, not counted: the SAMM sheet has 13 preamble rows above its header
(or none, in other exports), CASME II has blank columns, CAS(ME)^3 stores every cell as text
and has empty extra worksheets. Every cell comes back as a stripped string; whole numbers
stored as numbers read as ``"46"``, never ``"46.0"``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from vqa.errors import UserError

SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv")


@dataclass(frozen=True)
class Record:
    """One data row of a sheet: its 1-based row number as a spreadsheet shows it, and cells."""

    row: int
    cells: dict[str, str]


def _key(text: str) -> str:
    """Header cell -> comparison key: ``Onset Frame`` and ``OnsetFrame`` both -> ``onsetframe``."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def cell_text(value) -> str:
    """A cell as text: blanks -> "", 46.0 -> "46", text stripped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _raw_tables(path: Path) -> list[tuple[str | None, list[list[str]]]]:
    """(worksheet name or None, rows of text cells) for every table in the file."""
    import pandas as pd

    try:
        if path.suffix.lower() == ".csv":
            frames = {None: pd.read_csv(path, header=None, dtype=str, keep_default_na=False)}
        else:
            frames = pd.read_excel(path, sheet_name=None, header=None, dtype=object)
    except Exception as e:  # pandas raises many types for unreadable files
        raise UserError(
            f"cannot read sheet ({e})",
            file=path,
            fix="give the database's .xlsx, .xls or .csv label sheet",
        ) from None
    return [
        (name, [[cell_text(v) for v in row] for row in df.itertuples(index=False)])
        for name, df in frames.items()
    ]


def _find_header(rows: list[list[str]], required: tuple[str, ...]) -> int | None:
    keys = {_key(a) for a in required}
    for index, row in enumerate(rows):
        if keys <= {_key(c) for c in row}:
            return index
    return None


def _column_index(header: list[str], aliases: tuple[str, ...]) -> int | None:
    keys = [_key(c) for c in header]
    for alias in aliases:
        if _key(alias) in keys:
            return keys.index(_key(alias))
    return None


def _checked(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise UserError(
            "label sheet not found", file=path, fix="give the database's label sheet with --labels"
        )
    if path.suffix.lower() not in SUFFIXES:
        raise UserError(
            f"unsupported sheet type {path.suffix!r}",
            file=path,
            fix=f"use one of {', '.join(SUFFIXES)}",
        )
    return path


def _source(path: Path, name: str | None) -> str:
    return str(path) if name is None else f"{path}[{name}]"


def read_records(
    path: str | Path, columns: dict[str, tuple[str, ...]], optional: tuple[str, ...] = ()
) -> tuple[str, list[Record]]:
    """Rows of the first table whose header names ``Subject`` and ``Filename``.

    ``columns`` maps each field to the header spellings that may name it; the fields in
    ``optional`` may be absent (their cells read ""). Returns a label for the source
    (``file`` or ``file[worksheet]``) and the non-blank rows under the header.
    """
    path = _checked(path)
    for name, rows in _raw_tables(path):
        header_at = _find_header(rows, (columns["subject"][0], columns["filename"][0]))
        if header_at is None:
            continue
        header = rows[header_at]
        where = {field: _column_index(header, aliases) for field, aliases in columns.items()}
        missing = [
            aliases[0]
            for field, aliases in columns.items()
            if where[field] is None and field not in optional
        ]
        source = _source(path, name)
        if missing:
            raise UserError(
                f"header row has no {', '.join(missing)} column",
                file=source,
                row=header_at + 1,
                fix="add the column or use the database's original sheet",
            )
        records = [
            Record(
                i + 1,
                {
                    field: (row[col] if col is not None and col < len(row) else "")
                    for field, col in where.items()
                },
            )
            for i, row in enumerate(rows[header_at + 1 :], start=header_at + 1)
            if any(row)
        ]
        return source, records
    raise UserError(
        "no header row with Subject and Filename columns",
        file=path,
        fix="use the database's label sheet, with its header row",
    )


def _check_width(rows: list[list[str]], fields: tuple[str, ...], source: str) -> None:
    """Refuse a sheet without a header whose widest row has fewer columns than ``fields``:
    every column after a missing one would be read as the one before it."""
    width = max(len(row) for row in rows)
    if width < len(fields):
        raise UserError(
            f"the sheet has {width} columns, not the {len(fields)} of its database: "
            f"{', '.join(fields)}",
            file=source,
            fix="add the missing column at its place, as the database's own sheet has it",
        )


def read_positional(path: str | Path, fields: tuple[str, ...]) -> tuple[str, list[Record]]:
    """Rows of the first non-empty table of a sheet without a header row, cells named by
    position (``fields[0]`` is the first column); the row numbers are as a spreadsheet shows."""
    path = _checked(path)
    for name, rows in _raw_tables(path):
        records = [
            Record(i, {f: (row[k] if k < len(row) else "") for k, f in enumerate(fields)})
            for i, row in enumerate(rows, start=1)
            if any(row)
        ]
        if records:
            _check_width(rows, fields, _source(path, name))
            return _source(path, name), records
    raise UserError("the sheet has no rows", file=path, fix="give the database's label sheet")
