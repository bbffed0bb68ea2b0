"""What the local workspace already holds, and setting it aside before it is replaced.

The local run keeps an existing workspace (it may hold imported real logs) and rolls up what is in
it; demo data is written only when there is none, or on ``--fresh``, which first moves the old file
to ``<name>.previous.duckdb`` so that nothing is lost without a trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.adapters import local_workspace
from shared.tooling.log_import.records import GATEWAY, LLM


@dataclass(frozen=True)
class WorkspaceContents:
    gateway_rows: int
    llm_rows: int
    first: datetime | None  # earliest gateway row (UTC)
    last: datetime | None  # latest gateway row (UTC)

    @property
    def empty(self) -> bool:
        return self.gateway_rows == 0

    def describe(self) -> str:
        span = f", {self.first:%Y-%m-%d %H:%M} to {self.last:%Y-%m-%d %H:%M} UTC" if self.first and self.last else ""
        return f"{self.gateway_rows} gateway rows, {self.llm_rows} LLM-log rows{span}"


def _count(con: Any, table: str) -> int:
    import duckdb

    try:
        return int(con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
    except duckdb.CatalogException:  # no such table (a file from an interrupted run): nothing in it
        return 0


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)  # stored naive UTC, as Log Analytics


def read_contents(path: Path) -> WorkspaceContents | None:
    """None when there is no workspace file; else its row counts and time span."""
    if not path.is_file():
        return None
    con = local_workspace.connect(path, read_only=True)
    try:
        gateway, llm = _count(con, GATEWAY), _count(con, LLM)
        first = last = None
        if gateway:
            first, last = con.execute(f'SELECT min(TimeGenerated), max(TimeGenerated) FROM "{GATEWAY}"').fetchone()
    finally:
        con.close()
    return WorkspaceContents(gateway, llm, _utc(first), _utc(last))


def set_aside(path: Path) -> Path:
    """Move the workspace (and DuckDB's write-ahead log) to ``<stem>.previous<suffix>``; returns it."""
    previous = path.with_name(f"{path.stem}.previous{path.suffix}")
    for source, target in ((path, previous), (Path(f"{path}.wal"), Path(f"{previous}.wal"))):
        target.unlink(missing_ok=True)
        if source.exists():
            source.replace(target)
    return previous
