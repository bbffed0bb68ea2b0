"""Reconciling a month with Azure's bill: the month's cost lines against its Cost Management export.

The export comes as files (``chargeback reconcile --cost-export FILE...``) or from the blob
container the exports land in (``COST_EXPORT_CONTAINER``, :mod:`shared.core.export_layout` picks
the month's run). Files are read by :mod:`shared.adapters.cost_exports` (FOCUS 1.0+ or the classic
actual/amortized cost details, CSV, gzip or parquet) and compared per Azure OpenAI account and meter
by :func:`shared.core.reconcile.reconcile`, with every subscription's lines and the idle capacity.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from shared.adapters.cost_exports import CostExport, billed_rows, read_cost_export, read_cost_exports
from shared.core.costing_rules import Pricing
from shared.core.export_layout import ExportBlob, month_export_blobs
from shared.core.months import month_start
from shared.core.pricing import PriceTable
from shared.core.reconcile import DEFAULT_TOLERANCE, ReconciliationReport, reconcile
from shared.errors import ChargebackError
from shared.ports import UsageRepository
from shared.services.costing import month_cost_lines


class CostExportStore(Protocol):
    """Where exports land (``shared.adapters.cost_export_blobs.BlobCostExportStore``)."""

    def list_blobs(self) -> list[ExportBlob]: ...

    def download(self, name: str) -> bytes: ...


class NoExportError(ChargebackError):
    """The container holds no export run of the month (the message says where it looked)."""


def reconcile_exports(exports: Sequence[CostExport], repository: UsageRepository, prices: Callable[[], PriceTable],
                      month: datetime, tolerance: Decimal = DEFAULT_TOLERANCE) -> ReconciliationReport:
    """The month's bill rows against every cost line of the month (all subscriptions, idle capacity);
    deployments without a resource id are placed on their account by the deployment catalog."""
    pricing = Pricing.of(prices())
    start = month_start(month)
    return reconcile(billed_rows(exports), month_cost_lines(repository, pricing, start), start, tolerance,
                     pricing.catalog)


def reconcile_files(paths: Sequence[Path], repository: UsageRepository, prices: Callable[[], PriceTable],
                    month: datetime, tolerance: Decimal = DEFAULT_TOLERANCE) -> ReconciliationReport:
    return reconcile_exports(read_cost_exports(paths), repository, prices, month, tolerance)


def month_exports(store: CostExportStore, month: datetime, where: str) -> list[CostExport]:
    """The month's export run read from the container (each file in a folder of its own, its name kept,
    since the reader tells CSV, gzip and parquet apart by name and names rows by file)."""
    blobs = month_export_blobs(store.list_blobs(), month_start(month).date())
    if not blobs:
        raise NoExportError(f"no Cost Management export of {month:%Y-%m} in {where}: expected data files under "
                            f"<directory>/<export name>/{month:%Y%m}01-{month:%Y%m}DD/")
    exports = []
    with tempfile.TemporaryDirectory(prefix="cost-export-") as folder:
        for index, blob in enumerate(blobs):
            target = Path(folder, str(index), blob.name.rsplit("/", 1)[-1])
            target.parent.mkdir()
            target.write_bytes(store.download(blob.name))
            exports.append(read_cost_export(target))
    return exports
