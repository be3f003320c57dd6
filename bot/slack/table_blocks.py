"""Block Kit `table` blocks (slack-sdk 3.39+ knows them as TableBlock) within Slack's limits, paged when longer.

Slack's limits: one table per message, at most 100 rows (the header row included) of at most 20 cells. A cell
is raw text here, clipped to CELL_CHARS characters; an empty cell shows a dash (Slack refuses empty text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_ROWS = 100  # rows in one table block, the header row included
MAX_COLUMNS = 20  # cells in one row
CELL_CHARS = 200  # what one cell shows; longer values end with an ellipsis
EMPTY = "–"


def cell(value: Any) -> dict[str, str]:
    text = EMPTY if value is None or value == "" else str(value)
    if len(text) > CELL_CHARS:
        text = text[: CELL_CHARS - 1] + "…"
    return {"type": "raw_text", "text": text}


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def table_block(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """One table: the header row, then at most MAX_ROWS - 1 rows; at most MAX_COLUMNS columns."""
    if len(rows) > MAX_ROWS - 1:
        raise ValueError(f"a table block holds at most {MAX_ROWS - 1} rows under its header; page first")
    width = min(len(headers), MAX_COLUMNS)
    settings = [{"align": "right"} if rows and all(_numeric(r[i]) or r[i] is None for r in rows)
                else {"is_wrapped": True} for i in range(width)]
    return {"type": "table", "column_settings": settings,
            "rows": [[cell(h) for h in headers[:width]], *([cell(v) for v in row[:width]] for row in rows)]}


def pages(rows: Sequence[Sequence[Any]], per_page: int = MAX_ROWS - 1) -> list[list[Sequence[Any]]]:
    """The rows cut into pages of at most `per_page` (and never more than one table holds)."""
    per_page = max(1, min(per_page, MAX_ROWS - 1))
    return [list(rows[i:i + per_page]) for i in range(0, len(rows), per_page)] or [[]]
