"""Offline static check of KQL queries with Microsoft's Kusto analyzer.

Thin typed wrapper around ``tools/kql-check/check.js``, which loads the npm
package ``@kusto/language-service-next`` (the parser and semantic analyzer
behind the Azure Data Explorer / Log Analytics query editors) and analyzes
each query against the table schemas in ``queries/schemas/*.json``.

The analyzer knows the Azure Data Explorer function set, which is close to
but not identical with Log Analytics; see ``tools/kql-check/check.js``.

Example::

    from pathlib import Path
    from shared.tooling.querycheck import check_queries, format_report

    report = check_queries([Path("queries")])
    print(format_report(report))
    if report.errors:
        raise SystemExit(1)
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import QueryCheckError

__all__ = [
    "CheckReport",
    "Diagnostic",
    "FileReport",
    "QueryCheckError",
    "ResultColumn",
    "check_queries",
    "format_report",
]

DEFAULT_PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHECK_SCRIPT = Path("tools") / "kql-check" / "check.js"
KUSTO_PACKAGE = Path("node_modules") / "@kusto" / "language-service-next"
KUSTO_ENTRY_FILES = ("bridge.min.js", "Kusto.Language.Bridge.min.js")
DEFAULT_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class Diagnostic:
    """One analyzer message. ``line`` and ``column`` are 1-based."""

    file: Path
    line: int
    column: int
    severity: str  # "error", "warning", "suggestion" or "information"
    code: str  # e.g. "KS142"
    message: str
    start: int  # 0-based character offset into the query text
    length: int

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.severity} {self.code} {self.message}"


@dataclass(frozen=True)
class ResultColumn:
    """A column of the query's tabular result, with its Kusto type name."""

    name: str
    type: str

    def __str__(self) -> str:
        return f"{self.name}:{self.type}"


@dataclass(frozen=True)
class FileReport:
    """Diagnostics and result columns for one query file."""

    file: Path
    diagnostics: tuple[Diagnostic, ...]
    columns: tuple[ResultColumn, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def column_types(self) -> dict[str, str]:
        """Result columns as ``{name: type}``."""
        return {c.name: c.type for c in self.columns}


@dataclass(frozen=True)
class CheckReport:
    """Result of checking a set of query files."""

    files: tuple[FileReport, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for f in self.files for d in f.errors)

    @property
    def ok(self) -> bool:
        return not self.errors

    def for_file(self, path: Path) -> FileReport:
        """The report for ``path`` (compared after resolving both sides)."""
        wanted = path.resolve()
        for report in self.files:
            if report.file.resolve() == wanted:
                return report
        raise KeyError(str(path))


def check_queries(
    paths: Sequence[Path],
    *,
    schemas_dir: Path | None = None,
    project_root: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> CheckReport:
    """Analyze the given ``.kql`` files (directories are searched recursively).

    ``schemas_dir`` defaults to ``<project_root>/queries/schemas``; the project
    root is the folder holding ``package.json`` and ``node_modules``.

    Raises :class:`QueryCheckError` if node or the npm package is missing, a
    path does not exist, a schema is unreadable, or the checker fails.
    Query diagnostics (even errors) are returned in the report, not raised.
    """
    if not paths:
        raise ValueError("check_queries() needs at least one file or directory")
    root = (project_root or DEFAULT_PROJECT_ROOT).resolve()
    script = root / CHECK_SCRIPT
    if not script.is_file():
        raise QueryCheckError(f"KQL checker script not found: {script}")
    node = shutil.which("node")
    if node is None:
        raise QueryCheckError(
            "node (Node.js 20+) is not on PATH; install it, then run `npm ci` in "
            f"{root}"
        )
    package = root / KUSTO_PACKAGE
    missing = [name for name in KUSTO_ENTRY_FILES if not (package / name).is_file()]
    if missing:
        raise QueryCheckError(
            f"the Kusto analyzer (npm @kusto/language-service-next) is not installed: "
            f"{package} lacks {', '.join(missing)}; run `npm ci` in {root}"
        )

    argv = [node, str(script), "--json"]
    if schemas_dir is not None:
        argv += ["--schemas", str(schemas_dir.resolve())]
    argv += ["--", *(str(p.resolve()) for p in paths)]
    try:
        proc = subprocess.run(
            argv,
            cwd=root,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise QueryCheckError(f"running the KQL checker failed: {exc}") from exc

    if proc.returncode not in (0, 1):
        detail = proc.stderr.strip() or proc.stdout.strip() or "no output"
        raise QueryCheckError(f"KQL checker exited with {proc.returncode}: {detail}")
    try:
        document = json.loads(proc.stdout)
        report = _parse_report(document)
    except (ValueError, KeyError, TypeError) as exc:
        raise QueryCheckError(f"unexpected output from the KQL checker: {exc}") from exc
    if (proc.returncode == 1) != bool(report.errors):
        raise QueryCheckError(
            f"KQL checker exit code {proc.returncode} does not match its report "
            f"({len(report.errors)} error(s))"
        )
    return report


def format_report(report: CheckReport, *, show_columns: bool = True) -> str:
    """Render a report for humans, one diagnostic per line (compiler style)."""
    lines: list[str] = []
    for file_report in report.files:
        if not file_report.diagnostics:
            lines.append(f"{file_report.file}: ok")
        lines.extend(str(d) for d in file_report.diagnostics)
        if show_columns:
            cols = (
                ", ".join(str(c) for c in file_report.columns) or "(no tabular result)"
            )
            lines.append(f"  result: {cols}")
    errors = len(report.errors)
    lines.append(f"{len(report.files)} file(s) checked, {errors} error(s)")
    return "\n".join(lines)


def _parse_report(document: object) -> CheckReport:
    if not isinstance(document, dict):
        raise TypeError("the checker's JSON output is not an object")
    files: list[FileReport] = []
    entries: list[Any] = document["files"]
    for entry in entries:
        file = Path(str(entry["file"]))
        diagnostics = tuple(
            Diagnostic(
                file=file,
                line=int(d["line"]),
                column=int(d["column"]),
                severity=str(d["severity"]),
                code=str(d["code"]),
                message=str(d["message"]),
                start=int(d["start"]),
                length=int(d["length"]),
            )
            for d in entry["diagnostics"]
        )
        columns = tuple(
            ResultColumn(name=str(c["name"]), type=str(c["type"]))
            for c in entry["columns"]
        )
        files.append(FileReport(file=file, diagnostics=diagnostics, columns=columns))
    return CheckReport(files=tuple(files))
