"""An embedded DuckDB file standing in for a Log Analytics workspace, queried with duckdb-kql.

Tables are created from ``queries/schemas`` with the Log Analytics names and types, so the same
``.kql`` files run here and in Azure.  Parameter values are bound by DuckDB, never substituted.

Missing values follow Kusto's rules, so third-party queries (``x != ""``, ``isempty(x)``,
``summarize by x``) give the answers they give in Log Analytics: a ``string`` column has no null
in Kusto (a missing string is ``""``), so every write stores ``""`` for an absent string.  Every
other type (``int``, ``long``, ``real``, ``bool``, ``datetime``, ``dynamic``, ``guid``,
``timespan``) has a null value in Kusto (``T(null)``), which is what Log Analytics holds for a
missing one: those stay NULL here.  All writers (demo data, ``chargeback workspace import``, the
dev gateway) go through :func:`insert_rows`.  A workspace written before this rule is fixed once,
by the first writer that opens it (:func:`create_tables`); the table comment records that it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.errors import LogSourceError
from shared.queries import Query, conform
from shared.workspace_schema import table_schemas

DUCKDB_TYPES = {
    "string": "VARCHAR", "int": "INTEGER", "long": "BIGINT", "real": "DOUBLE", "bool": "BOOLEAN",
    "datetime": "TIMESTAMP", "dynamic": "JSON", "guid": "VARCHAR", "timespan": "INTERVAL",
}


LOCK_WAIT_SECONDS = 5.0  # DuckDB allows one writer process: wait this long for it (dev gateway writes)


def connect(path: Path, read_only: bool = False, lock_wait: float = LOCK_WAIT_SECONDS) -> Any:
    import duckdb
    import duckdb_kql

    if read_only and not path.is_file():
        raise LogSourceError(
            f"local workspace {path} does not exist; create it with `chargeback demo-data` "
            "or `chargeback workspace import`")
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_wait
    pause = 0.02
    while True:
        try:
            return duckdb_kql.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            if not _lock_conflict(exc):
                raise LogSourceError(f"cannot open local workspace {path}: {exc}") from exc
            if time.monotonic() + pause > deadline:
                raise LogSourceError(
                    f"local workspace {path} is locked by another writer (DuckDB allows one writing process, "
                    f"e.g. a running `chargeback dev-gateway`); still locked after {lock_wait:.1f}s, try again"
                ) from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.25)


def _lock_conflict(exc: Exception) -> bool:
    """Another process holds the file lock, or this process has it open with other options."""
    text = str(exc).lower()
    return "could not set lock" in text or "conflicting lock" in text or "different configuration" in text


# The table comment marks a table whose strings follow Kusto's rule (no NULL strings).
KUSTO_STRINGS_MARK = "kusto-strings:1"


def create_tables(con: Any) -> None:
    """Create every schema table that does not exist yet (datetimes are naive UTC), and give an
    older table's NULL strings Kusto's value ("")."""
    marked = {name for name, comment in con.execute(
        "SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = current_schema()").fetchall()
              if comment == KUSTO_STRINGS_MARK}
    for table, columns in table_schemas().items():
        cols = ", ".join(f'"{c.name}" {DUCKDB_TYPES[c.kql_type]}' for c in columns)
        con.execute(f'CREATE TABLE IF NOT EXISTS "{table}" ({cols})')
        if table not in marked:
            fix_null_strings(con, table)
            con.execute(f"COMMENT ON TABLE \"{table}\" IS '{KUSTO_STRINGS_MARK}'")


def fix_null_strings(con: Any, table: str) -> None:
    """NULL -> "" in the string columns of ``table`` (one pass; a workspace written by an older
    version).  Done once per table, when a writer opens it, rather than on every read: readers open
    the file read-only, and the dev gateway opens it for every batch."""
    strings = string_columns(table)
    if not strings:
        return
    assignments = ", ".join(f'"{name}" = coalesce("{name}", \'\')' for name in strings)
    where = " OR ".join(f'"{name}" IS NULL' for name in strings)
    con.execute(f'UPDATE "{table}" SET {assignments} WHERE {where}')


def string_columns(table: str) -> tuple[str, ...]:
    """Columns of Kusto type ``string``: the only type with no null value (``guid`` has one)."""
    return tuple(c.name for c in table_schemas()[table] if c.kql_type == "string")


def insert_rows(con: Any, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert rows given as column -> value (dynamic values as JSON).  An absent or None value is
    stored as Kusto holds it: "" in a string column, NULL in any other."""
    columns = table_schemas()[table]
    dynamic = {c.name for c in columns if c.kql_type == "dynamic"}
    strings = set(string_columns(table))
    names = [c.name for c in columns]

    def values(row: Mapping[str, Any]) -> list[Any]:
        out = []
        for name in names:
            value = row.get(name)
            if value is None:
                value = "" if name in strings else None
            elif name in dynamic and value is not None and not isinstance(value, str):
                value = json.dumps(value)
            elif isinstance(value, datetime) and value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            out.append(value)
        return out

    batch = [values(row) for row in rows]
    if not batch:
        return 0
    # Column-wise through Arrow: row-by-row executemany measured ~300 rows/s here.
    import pyarrow as pa

    arrow_types = {"string": pa.string(), "int": pa.int32(), "long": pa.int64(), "real": pa.float64(),
                   "bool": pa.bool_(), "datetime": pa.timestamp("us"), "dynamic": pa.string(),
                   "guid": pa.string(), "timespan": pa.duration("us")}
    arrays = [pa.array([row[i] for row in batch], type=arrow_types[col.kql_type]) for i, col in enumerate(columns)]
    con.register("staged_rows", pa.Table.from_arrays(arrays, names=names))
    try:
        quoted = ", ".join(f'"{n}"' for n in names)
        con.execute(f'INSERT INTO "{table}" ({quoted}) SELECT {quoted} FROM staged_rows')
    finally:
        con.unregister("staged_rows")
    return len(batch)


@lru_cache(maxsize=64)
def translate(text: str) -> Any:
    """KQL text -> duckdb-kql's SQL, once per process per query text (translating the rollup
    query takes ~0.25 s, a quarter of a 1M-row run).  The schema is the one every workspace is
    created from (``queries/schemas``), so no catalog read is needed; values stay placeholders."""
    import duckdb_kql

    schema = {table: [column.name for column in columns] for table, columns in table_schemas().items()}
    return duckdb_kql.to_sql(text, schema=schema)


def bind(translation: Any, values: Mapping[str, object]) -> dict[str, Any]:
    """Values by placeholder slot, typed by the query's ``declare query_parameters`` (defaults
    applied; an undeclared name or a missing value is refused, as ``duckdb_kql.query`` does)."""
    from duckdb_kql import KqlSchemaError
    from duckdb_kql.params import bind as bind_declared

    bound, unbound = bind_declared(list(translation.declarations), dict(values))
    if unbound:
        raise KqlSchemaError(", ".join(unbound), hint="declared query parameter with no value and no default")
    return {slot: value for slot, value in bound.items() if slot in translation.slots}


class LocalWorkspaceSource:
    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"local workspace {self.path}"

    def run(self, query: Query, parameters: Mapping[str, object]) -> list[dict[str, Any]]:
        import duckdb
        import duckdb_kql

        con = connect(self.path, read_only=True)
        try:
            translation = translate(query.text)
            if translation.parameters.keys() - {d.slot for d in translation.declarations}:
                # The query reads the clock (now()): a cached translation would freeze it.
                relation = duckdb_kql.query(con, query.text, dict(parameters))
                return conform(query, list(relation.columns), relation.fetchall())
            con.execute("SET TimeZone='UTC'")  # KQL datetimes are UTC (duckdb-kql's rule R8)
            # execute(), not sql(): a relation binds the SQL once to learn its columns and again
            # to run it (measured 0.045 s more per run of the 32 KB rollup query).
            cursor = con.execute(str(translation), bind(translation, parameters) or None)
            columns = [column[0] for column in cursor.description]
            return conform(query, columns, cursor.fetchall())
        except (duckdb_kql.KqlError, duckdb.Error) as exc:
            raise LogSourceError(f"query {query.name} failed on {self.describe()}: {exc}") from exc
        finally:
            con.close()
