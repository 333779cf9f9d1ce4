"""Reading a ``dse predict`` table: only an empty cell is blank, every line has the header's
fields, header names are stripped and unique. Each problem is one ``ValueError`` line naming the
file, the line or column, and the fix."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from .schema import EXTRA_OUTPUT_COLUMNS, OUTPUT_COLUMNS


def read_scenarios(src: Path) -> pd.DataFrame:
    """The table in ``src`` (CSV, UTF-8). Cells are read as written: ``nan``, ``NA`` or
    ``null`` are text (pandas would make them blank), so a number column holding one is refused
    by the schema and an ``id`` keeps it; ids are always text."""
    try:
        with open(src, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(
            f"{src}: cannot read as CSV ({e.__class__.__name__}); save it as comma-separated UTF-8"
        ) from e
    lines = [ln for ln in lines if ln]  # blank lines carry no row
    if not lines:
        raise ValueError(f"{src}: the file is empty; give a header line and one row per scenario")
    header = [h.strip() for h in lines[0]]
    for n, fields in enumerate(lines[1:], start=2):
        if len(fields) != len(header):
            raise ValueError(
                f"{src}: line {n} has {len(fields)} fields but the header has {len(header)}; "
                "quote cells that contain commas and give every row the header's columns"
            )
    seen = set()
    for h in header:
        if h in seen:
            raise ValueError(f"{src}: column {h!r} appears more than once; keep one")
        seen.add(h)
    for col in OUTPUT_COLUMNS + EXTRA_OUTPUT_COLUMNS:
        if col in seen and f"measured_{col}" in seen:
            raise ValueError(
                f"{src}: both {col} and measured_{col} are given; an input {col} is kept as "
                f"measured_{col}, so keep one of them"
            )
    rows = [[c if c.strip() else None for c in fields] for fields in lines[1:]]
    df = pd.DataFrame(rows, columns=header, dtype=object)
    # Numbers where every cell is one (the schema parses text cells itself); ids stay text.
    for col in df.columns:
        if col == "id":
            continue
        converted = pd.to_numeric(df[col], errors="coerce")
        if (converted.notna() | df[col].isna()).all():
            df[col] = converted
    return df


__all__ = ["read_scenarios"]
