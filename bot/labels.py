"""`bankbot export-labels --since 30d --out FILE.csv`: the customers' choices in clarifying questions as
Banking77's `text,category` CSV, ready for training. Questions were redacted before they were stored."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llm.redact import redact
from storage.dialogue import DialogueStore

_SPAN = re.compile(r"^(\d+)([dhw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> timedelta:
    """"30d", "12h", "2w"."""
    m = _SPAN.match((text or "").strip())
    if not m:
        raise ValueError(f"--since takes a span like 30d, 12h or 2w, not {text!r}")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def labels_csv(labels: list[tuple[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["text", "category"])
    for question, intent in labels:
        writer.writerow([redact(question), intent])  # redacted when stored; again, should the redactor have grown
    return out.getvalue()


async def export_labels(db: Any, since: timedelta, out: Path) -> int:
    """Write the labelled examples chosen within `since`; returns how many."""
    labels = await DialogueStore(db).labels(datetime.now(UTC) - since)
    await asyncio.to_thread(out.write_text, labels_csv(labels), encoding="utf-8")
    return len(labels)


def cmd_export_labels(args, settings: Any) -> int:
    from storage.database import Database

    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"bankbot export-labels: {exc}")
        return 2

    async def run() -> int:
        db = Database(settings.database_url)
        try:
            await db.upgrade()
            return await export_labels(db, since, Path(args.out))
        finally:
            await db.aclose()

    n = asyncio.run(run())
    print(f"Wrote {n} labelled example(s) to {args.out} (text,category).")
    return 0


def add_parser(sub: Any) -> None:
    export = sub.add_parser("export-labels", help="customers' choices in clarifying questions as a text,category CSV")
    export.add_argument("--since", default="30d", help="how far back: 30d, 12h, 2w (default 30d)")
    export.add_argument("--out", required=True, help="the CSV file to write")
    export.set_defaults(handler=cmd_export_labels)
