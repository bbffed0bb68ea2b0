"""FOCUS rows (:mod:`shared.core.focus`) written as files: CSV, parquet, and Microsoft FinOps hubs' ingestion layout.

**CSV** (cells as :mod:`shared.core.csv_cells` writes them): a header, every field quoted, UTF-8.
Decimal columns are plain numbers (exact, no exponent, never neutralised: ``-0.5`` is a number);
every other cell has its control characters removed and, if it starts like a spreadsheet formula
(``=``, ``+``, ``-``, ``@``, tab, CR — after leading blanks), gets a leading ``'``.

**Parquet** (pyarrow, in the ``local`` extras only: imported when a parquet file is written or read,
and :class:`ParquetUnavailableError` says how to install it): Decimal columns are
``decimal128(38, 18)`` — exact, 20 integer and 18 fraction digits, more than any price or token
quantity needs; a value that would not fit is refused, never rounded. Date/Time columns are UTC
timestamps (milliseconds, the finest unit parquet keeps), JSON columns text, ``x_`` flags booleans.

**FinOps hubs.** Microsoft's FinOps toolkit documents ("How data is processed in FinOps hubs",
section "About the ingestion container", learn.microsoft.com/cloud-computing/finops/toolkit/hubs/
data-processing; source ``docs-mslearn/toolkit/hubs/data-processing.md`` in microsoft/finops-toolkit)
that custom FOCUS data is ingested from parquet files at::

    ingestion/{dataset}/{date-folder-path}/{scope-id-path}/{ingestion-id}__{original-file-name}.parquet

with dataset ``Costs``, ``{yyyy}/{mm}`` to keep the latest ingestion per month, a scope path that is
"any unique path" per scope, an ingestion id shared by all files of one ingestion ("used to remove
previously ingested data in the same folder path"), and then "an empty manifest.json file in the
target ingestion folder after all other files are completely ready" to trigger the Data Explorer
load (the file is not parsed). :func:`write_hubs_layout` does exactly that under a directory that
stands for the ``ingestion`` container; it removes the folder's manifest first (so a half-written
folder never looks complete) and, after the new file is in place, the parquet files of earlier
ingestions in the same folder (hubs keeps only the latest per folder; storage-based reports would
otherwise count both).
"""

from __future__ import annotations

import decimal
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

from shared.core.csv_cells import has_control, quoted_csv
from shared.core.focus import COLUMNS, DATETIME_COLUMNS, DECIMAL_COLUMNS, FOCUS_VERSION, FocusColumn
from shared.errors import ChargebackError

DECIMAL_PRECISION = 38
DECIMAL_SCALE = 18
HUBS_DATASET = "Costs"
MANIFEST = "manifest.json"
_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)
_MAX_DECIMAL = Decimal(10) ** (DECIMAL_PRECISION - DECIMAL_SCALE)
_EXACT = decimal.Context(prec=80, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class FocusFileError(ChargebackError):
    """A FOCUS file cannot be written as asked (a value that does not fit its column, a bad path part)."""


class ParquetUnavailableError(FocusFileError):
    """pyarrow is not installed: parquet needs the ``local`` extras."""


def pyarrow_module() -> ModuleType:
    """pyarrow, imported on first use (it is not in requirements.txt: the Functions app never needs it)."""
    try:
        import pyarrow
    except ImportError:
        raise ParquetUnavailableError(
            "parquet files need pyarrow, which is not installed: install the local extras "
            "(pip install -e '.[local]') or pyarrow itself; CSV works without it") from None
    module: ModuleType = pyarrow
    return module


# -- CSV ------------------------------------------------------------------------------------------------
def focus_csv_text(rows: Iterable[Mapping[str, object]], columns: Sequence[FocusColumn] = COLUMNS) -> str:
    names = [column.name for column in columns]
    checked = []
    for index, row in enumerate(rows):
        for name in DECIMAL_COLUMNS:
            value = row.get(name)
            if value is not None and not isinstance(value, Decimal):
                raise FocusFileError(f"row {index}: {name} must be a Decimal, got {value!r}")
        checked.append(row)
    return quoted_csv(names, checked, numeric=DECIMAL_COLUMNS)


def write_focus_csv(path: Path, rows: Iterable[Mapping[str, object]]) -> Path:
    path.write_text(focus_csv_text(rows), encoding="utf-8", newline="")
    return path


# -- parquet ----------------------------------------------------------------------------------------------
def _arrow_type(pa: ModuleType, column: FocusColumn) -> Any:
    if column.data_type == "Decimal":
        return pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE)
    if column.data_type == "Date/Time":
        return pa.timestamp("ms", tz="UTC")  # parquet has no seconds unit; ms round-trips
    if column.data_type == "Boolean":
        return pa.bool_()
    return pa.string()  # String and JSON (JSON object text)


def focus_schema(columns: Sequence[FocusColumn] = COLUMNS) -> Any:
    pa = pyarrow_module()
    return pa.schema([pa.field(c.name, _arrow_type(pa, c), nullable=c.nullable) for c in columns],
                     metadata={"focus_version": FOCUS_VERSION, "generator": "apim-chargeback"})


def _fitting_decimal(name: str, index: int, value: object) -> Decimal | None:
    if value is None:
        return None
    if not isinstance(value, Decimal) or not value.is_finite():
        raise FocusFileError(f"row {index}: {name} must be a finite Decimal, got {value!r}")
    try:
        with decimal.localcontext(_EXACT):
            fits = value.quantize(_QUANTUM) == value and abs(value) < _MAX_DECIMAL
    except decimal.DecimalException:
        fits = False
    if not fits:
        raise FocusFileError(f"row {index}: {name} = {value} does not fit decimal({DECIMAL_PRECISION}, "
                             f"{DECIMAL_SCALE}) exactly; refusing to round it")
    return value


def _moment(name: str, index: int, value: object) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.strptime(str(value), _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise FocusFileError(f"row {index}: {name} is not YYYY-MM-DDTHH:mm:ssZ: {value!r}") from None


def focus_table(rows: Sequence[Mapping[str, object]], columns: Sequence[FocusColumn] = COLUMNS) -> Any:
    """The rows as a pyarrow Table with the FOCUS schema (raises on a value that does not fit)."""
    pa = pyarrow_module()
    schema = focus_schema(columns)
    arrays = []
    for column in columns:
        name = column.name
        values: list[object]
        if name in DECIMAL_COLUMNS:
            values = [_fitting_decimal(name, i, row.get(name)) for i, row in enumerate(rows)]
        elif name in DATETIME_COLUMNS:
            values = [_moment(name, i, row.get(name)) for i, row in enumerate(rows)]
        else:
            values = [row.get(name) for row in rows]
        if not column.nullable and any(v is None for v in values):
            raise FocusFileError(f"{name} may not be null (FOCUS non-nullable column)")
        arrays.append(pa.array(values, type=schema.field(name).type))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_focus_parquet(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    table = focus_table(rows)
    import pyarrow.parquet as pq  # pyarrow itself was found by focus_table

    pq.write_table(table, str(path))
    return path


def read_focus_parquet(path: Path) -> list[dict[str, object]]:
    """A FOCUS parquet file back as rows (Decimals, UTC datetimes, booleans, text)."""
    pyarrow_module()
    import pyarrow.parquet as pq

    rows: list[dict[str, object]] = pq.read_table(str(path)).to_pylist()
    return rows


# -- FinOps hubs ingestion layout ------------------------------------------------------------------------------
def _path_part(what: str, text: str) -> str:
    if not text or text in (".", "..") or "\\" in text or "/" in text or has_control(text):
        raise FocusFileError(f"{what} {text!r} cannot be a folder or file name part")
    return text


def scope_parts(scope: str) -> list[str]:
    """A scope path (``/providers/Microsoft.Billing/billingAccounts/123`` or ``apim/contoso``) as folder names."""
    text = scope.strip().strip("/")
    if not text:
        raise FocusFileError("the scope path may not be empty")
    return [_path_part("scope path part", part) for part in text.split("/")]


def hubs_folder(root: Path, month: date, scope: str) -> Path:
    """``{root}/Costs/{yyyy}/{mm}/{scope-path}``: ``root`` stands for the ``ingestion`` container."""
    return root.joinpath(HUBS_DATASET, f"{month.year:04d}", f"{month.month:02d}", *scope_parts(scope))


def write_hubs_layout(root: Path, rows: Sequence[Mapping[str, object]], month: date, scope: str, *,
                      ingestion_id: str | None = None, name: str = "apim-chargeback") -> Path:
    """Write ``rows`` (one month's FOCUS rows) as FinOps hubs expects them; the parquet file's path.

    Order matters to hubs: the old manifest goes first, the parquet file is renamed into place once
    complete, earlier ingestions' files in the folder go, and the empty ``manifest.json`` comes last.
    """
    expected_start = datetime(month.year, month.month, 1, tzinfo=UTC).strftime(_TIME_FORMAT)
    for index, row in enumerate(rows):
        if row.get("BillingPeriodStart") != expected_start:
            raise FocusFileError(f"row {index}: BillingPeriodStart {row.get('BillingPeriodStart')!r} is not the "
                                 f"month {month.year:04d}-{month.month:02d} being written")
    ingestion = _path_part("ingestion id", ingestion_id or uuid.uuid4().hex)
    file_name = _path_part("file name", name)
    if "__" in ingestion:
        raise FocusFileError(f"ingestion id {ingestion!r} may not contain '__' (it separates the id from the name)")
    table = focus_table(rows)  # before touching the folder: a bad row leaves the last ingestion in place
    folder = hubs_folder(root, month, scope)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)
    target = folder / f"{ingestion}__{file_name}.parquet"
    partial = folder / f".{ingestion}__{file_name}.parquet.partial"
    import pyarrow.parquet as pq

    pq.write_table(table, str(partial))
    os.replace(partial, target)
    for earlier in folder.glob("*__*.parquet"):
        if earlier.name.split("__", 1)[0] != ingestion:
            earlier.unlink()
    (folder / MANIFEST).write_bytes(b"")
    return target
