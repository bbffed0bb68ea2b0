"""A month of cost as a FOCUS 1.2 dataset (:mod:`shared.core.focus`), for finance tools and FinOps hubs.

The rows are the month's cost lines (:func:`shared.services.costing.month_cost_lines`): one per
APIM subscription × APIM service × product × deployment × model × meter kind × day (an hour where a price or the
deployment changes inside the day), one per subscription × provisioned deployment × hour for the
PTU allocation, and one per provisioned deployment × hour for its idle (``unallocated-capacity``)
capacity. The chargeback of the same month is built from the same lines, so the sum of
``BilledCost`` is the chargeback's total exactly (both leave unpriced usage at 0).

Each row carries the subscription's cost center, owner, display name and tags from the
subscription directory (``x_CostCenter``, ``Tags``, ...). The billing account is this dataset's own
(``FOCUS_BILLING_ACCOUNT_ID`` / ``_NAME``, by default the APIM service): the rows re-allocate
money Azure already bills, so they belong in their own scope, never added to Microsoft's export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from shared.core.cost_centers import SubscriptionInfo
from shared.core.cost_lines import CostLine
from shared.core.focus import billed_total, focus_rows
from shared.core.months import month_start, next_month
from shared.core.pricing import PriceTable
from shared.ports import UsageRepository
from shared.services.costing import month_cost_lines


@dataclass(frozen=True)
class BillingAccount:
    id: str
    name: str | None


@dataclass(frozen=True)
class FocusExport:
    month: datetime  # the month's first instant, UTC
    currency: str
    rows: list[dict[str, object]]  # FOCUS rows, columns in shared.core.focus.COLUMN_NAMES order
    billed_total: Decimal  # the sum of BilledCost

    def file_name(self, extension: str) -> str:
        return f"focus-{self.month:%Y-%m}.{extension}"


def _order(line: CostLine) -> tuple[object, ...]:
    return (line.charge_start, line.subscription_id.lower(), line.apim_service, line.deployment.lower(),
            line.product_id, line.model, line.token_kind, line.service_tier)


def month_focus(repository: UsageRepository, prices: Callable[[], PriceTable], month: datetime,
                account: BillingAccount, directory: Iterable[SubscriptionInfo],
                subscriptions: Sequence[str] | None = None) -> FocusExport:
    """The FOCUS rows of ``month``: every chargeable subscription's (and the idle capacity), or only
    ``subscriptions``' (a scoped caller: no ``unallocated-capacity`` rows, as in its chargeback)."""
    table = prices()
    start = month_start(month)
    lines = sorted(month_cost_lines(repository, table, start, subscriptions), key=_order)
    centers = {record.subscription_id: record for record in directory}
    rows = focus_rows(lines, start, next_month(start), account.id, account.name, centers)
    return FocusExport(start, table.currency, rows, billed_total(rows))
