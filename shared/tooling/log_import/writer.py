"""Parsed log rows -> the local DuckDB workspace, without duplicating rows it already holds.

Dedupe key: ``CorrelationId`` for gateway rows, ``(CorrelationId, SequenceNumber)`` for LLM-log
rows (a row without a CorrelationId got ``import-<hash of the row>`` from the parser).  Within a
batch the first occurrence wins; a batch is then checked against the table with a semi-join on
the keys, and only the new rows are inserted.  Each file is one transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.adapters import local_workspace
from shared.errors import ImportFormatError
from shared.tooling.log_import.readers import parse_file
from shared.tooling.log_import.records import LLM, TABLES, Malformed, Row, dedupe_key

BATCH_ROWS = 20_000
LISTED_SKIPS = 20
NO_TABLE = "(no table)"


@dataclass
class TableCounts:
    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class Skip:
    file: str
    unit: str
    line: int
    reason: str
    column: int | None = None

    def where(self) -> str:
        """``line 3``, or ``line 1 column 812`` for a record that does not start its line."""
        return f"{self.unit} {self.line}" + (f" column {self.column}" if self.column and self.column > 1 else "")


@dataclass
class ImportReport:
    workspace: Path
    tables: dict[str, TableCounts] = field(default_factory=lambda: {t: TableCounts() for t in TABLES})
    files: list[tuple[str, str]] = field(default_factory=list)  # (file, kind) read
    failed: list[str] = field(default_factory=list)  # messages of files that could not be read
    skips: list[Skip] = field(default_factory=list)  # the first LISTED_SKIPS
    skipped: int = 0
    ignored_fields: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.failed

    def skip(self, file: str, unit: str, item: Malformed) -> None:
        self.skipped += 1
        self.tables.setdefault(item.table or NO_TABLE, TableCounts()).skipped += 1
        self.tables[item.table or NO_TABLE].read += 1
        if len(self.skips) < LISTED_SKIPS:
            self.skips.append(Skip(file, unit, item.line, item.reason, item.column))

    def summary(self) -> str:
        lines = [f"{file}: {kind}" for file, kind in self.files]
        lines += [f"error: {message}" for message in self.failed]
        header = f"{'table':<28}{'read':>10}{'inserted':>10}{'duplicates':>12}{'skipped':>10}"
        lines += ["", f"workspace {self.workspace}", header, "-" * len(header)]
        for table, c in self.tables.items():
            lines.append(f"{table:<28}{c.read:>10}{c.inserted:>10}{c.duplicates:>12}{c.skipped:>10}")
        if self.skipped:
            lines.append("")
            lines.append(f"skipped {self.skipped} malformed record(s)"
                         + (f", the first {LISTED_SKIPS}:" if self.skipped > LISTED_SKIPS else ":"))
            lines += [f"  {s.file} {s.where()}: {s.reason}" for s in self.skips]
        if self.ignored_fields:
            fields = ", ".join(f"{name} ({count})" for name, count in sorted(self.ignored_fields.items()))
            lines += ["", f"ignored fields (no matching column): {fields}"]
        return "\n".join(lines)


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files as given; a directory stands for every file under it (e.g. a storage export tree)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            out.append(path)
    return out


def import_files(workspace: Path, paths: Sequence[Path], table: str | None = None,
                 batch_rows: int = BATCH_ROWS) -> ImportReport:
    report = ImportReport(workspace)
    con: Any = None
    try:
        for path in expand(paths):
            try:
                log = parse_file(path, table)
            except ImportFormatError as exc:
                report.failed.append(str(exc))
                continue
            if con is None:
                con = local_workspace.connect(workspace)
                local_workspace.create_tables(con)
            report.files.append((str(path), log.kind))
            con.execute("BEGIN TRANSACTION")
            try:
                _import_items(con, report, str(path), log.unit, log.items, batch_rows)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
    finally:
        if con is not None:
            con.close()
    return report


def _import_items(con: Any, report: ImportReport, file: str, unit: str, items: Iterable[Row | Malformed],
                  batch_rows: int) -> None:
    batches: dict[str, list[Row]] = {t: [] for t in TABLES}
    for item in items:
        if isinstance(item, Malformed):
            report.skip(file, unit, item)
            continue
        report.tables[item.table].read += 1
        report.ignored_fields.update(item.ignored)
        batch = batches[item.table]
        batch.append(item)
        if len(batch) >= batch_rows:
            _write(con, report, item.table, batch)
            batch.clear()
    for name, batch in batches.items():
        _write(con, report, name, batch)


def _write(con: Any, report: ImportReport, table: str, rows: list[Row]) -> None:
    counts = report.tables[table]
    unique: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        unique.setdefault(dedupe_key(row), row)
    counts.duplicates += len(rows) - len(unique)
    if not unique:
        return
    present = _present_keys(con, table, list(unique))
    counts.duplicates += len(present)
    counts.inserted += local_workspace.insert_rows(
        con, table, (row.values for key, row in unique.items() if key not in present))


def _present_keys(con: Any, table: str, keys: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    """The keys among ``keys`` that rows of ``table`` already have."""
    ids = [key[0] for key in keys]
    if table == LLM:
        found = con.execute(
            f'SELECT k.id, k.seq FROM (SELECT unnest(?::VARCHAR[]) AS id, unnest(?::INTEGER[]) AS seq) AS k '
            f'WHERE EXISTS (SELECT 1 FROM "{table}" AS t WHERE t.CorrelationId = k.id '
            f'AND t.SequenceNumber IS NOT DISTINCT FROM k.seq)', [ids, [key[1] for key in keys]]).fetchall()
    else:
        found = con.execute(
            f'SELECT k.id FROM (SELECT unnest(?::VARCHAR[]) AS id) AS k '
            f'WHERE EXISTS (SELECT 1 FROM "{table}" AS t WHERE t.CorrelationId = k.id)', [ids]).fetchall()
    return {tuple(row) for row in found}
