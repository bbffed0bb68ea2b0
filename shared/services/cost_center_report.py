"""The monthly chargeback filed under cost centers: finance's view of who owes what.

Grouping is a mapping applied at grouping time: each line's APIM subscription is looked up in the
subscription directory (:class:`shared.core.cost_centers.SubscriptionDirectory`); one without a
cost center, or one the directory has never seen, is ``unassigned``. The idle capacity of
provisioned deployments belongs to no team and no cost center: its lines stay together under
``unallocated-capacity``. The groups' costs add up to the chargeback's total exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.core.cost_centers import SubscriptionDirectory, SubscriptionInfoRepository, group_by_cost_center
from shared.core.cost_lines import UNALLOCATED_CAPACITY
from shared.core.pricing import Cost, sum_costs
from shared.core.usage import Counters
from shared.services.costing import Chargeback


@dataclass(frozen=True)
class CostCenterLine:
    cost_center: str  # a cost center, ``unassigned`` or ``unallocated-capacity``
    subscriptions: tuple[str, ...]  # the subscriptions (or idle deployments) summed in it
    owners: tuple[str, ...]  # the subscriptions' owners, as recorded
    counters: Counters
    cost: Cost


def chargeback_by_cost_center(report: Chargeback, directory: SubscriptionDirectory) -> list[CostCenterLine]:
    """One line per cost center (sorted, ``unassigned`` and then ``unallocated-capacity`` last)."""
    def cost_center_of(subscription_id: str) -> str:
        return UNALLOCATED_CAPACITY if subscription_id == UNALLOCATED_CAPACITY \
            else directory.cost_center_of(subscription_id)

    groups = group_by_cost_center(report.lines, cost_center_of)
    ordered = sorted(groups, key=lambda name: name == UNALLOCATED_CAPACITY)  # stable: keeps the core's order
    lines = []
    for name in ordered:
        members = groups[name]
        owners = {record.owner for line in members if (record := directory.get(line.subscription_id)) and record.owner}
        names = [line.deployment if line.subscription_id == UNALLOCATED_CAPACITY else line.subscription_id
                 for line in members]
        lines.append(CostCenterLine(name, tuple(names), tuple(sorted(owners)),
                                    sum((line.counters for line in members), Counters()),
                                    sum_costs(line.cost for line in members)))
    return lines


def cost_center_lookup(store: SubscriptionInfoRepository) -> Callable[[str], str]:
    """Subscription -> cost center, the directory read once, on the first lookup (a report grouped
    by something else never reads it)."""
    loaded: list[SubscriptionDirectory] = []

    def cost_center_of(subscription_id: str) -> str:
        if not loaded:
            loaded.append(SubscriptionDirectory(store.all()))
        return loaded[0].cost_center_of(subscription_id)

    return cost_center_of
