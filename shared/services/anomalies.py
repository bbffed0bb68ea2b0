"""Spend anomalies after each scheduled rollup: each subscription's day cost against its own
trailing 28 days (the rule is :mod:`shared.core.anomalies`), recorded in the alert outbox.

The days judged are the ones the quota evaluation looks at (today, and any earlier day the rollup
window reached, for late rows).  The outbox key is the subscription-day, so an anomaly is recorded
and delivered once however often the day is judged again; a later, larger cost the same day does
not alarm twice.  Probe traffic is never judged (it is not charged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from shared.core.access import Scope
from shared.core.alerting import ANOMALY, Alert, anomaly_alert
from shared.core.anomalies import AnomalyRule, judge
from shared.core.moments import parse_range
from shared.core.pricing import PriceTable
from shared.core.quotas import check_subscription_id
from shared.core.usage import Granularity, is_chargeable
from shared.ports import AlertOutbox, OutboxEntry, UsageRepository
from shared.services.costing import usage_costs

MAX_LISTED = 5000  # outbox entries read per subscription for the list


@dataclass
class _Day:
    cost: Decimal = Decimal(0)
    tokens: int = 0
    unpriced: int = 0
    requests: int = 0


class AnomalyDetector:
    def __init__(self, usage: UsageRepository, rule: AnomalyRule | None = None) -> None:
        self.usage = usage
        self.rule = rule or AnomalyRule()

    def due(self, days: Sequence[datetime], table: PriceTable, as_of: datetime) -> list[Alert]:
        """The anomaly alerts of ``days`` (UTC day starts), from the stored day rows, each priced on
        its own date.  One range read covers the days and their trailing windows."""
        if not days:
            return []
        start = min(days) - timedelta(days=self.rule.window_days)
        rows = self.usage.read_all(Granularity.DAY, start, max(days) + timedelta(days=1))
        rows = [row for row in rows if is_chargeable(row.subscription_id) and row.period_start <= as_of]
        by_subscription: dict[str, dict[date, _Day]] = {}
        # priced as the chargeback prices them: per meter of the deployment in force, PTU shares included
        for row, cost in zip(rows, usage_costs(rows, self.usage, table), strict=True):
            day = by_subscription.setdefault(row.subscription_id, {}).setdefault(row.period_start.date(), _Day())
            day.cost += Decimal(cost.amount)
            day.unpriced += cost.unpriced_tokens
            day.tokens += row.counters.total_tokens
            day.requests += row.counters.requests
        alerts = []
        for subscription, seen in sorted(by_subscription.items()):
            used = [d for d, totals in seen.items() if totals.requests]
            if not used:
                continue
            first_seen = min(used)
            history = {d: totals.cost for d, totals in seen.items()}
            for moment in sorted(days):
                today = seen.get(moment.date())
                if today is None:
                    continue
                found = judge(subscription, moment.date(), today.cost, history, first_seen, self.rule)
                if found is not None:
                    alerts.append(anomaly_alert(found, today.tokens, today.unpriced, table.currency, as_of))
        return alerts


def visible_anomalies(outbox: AlertOutbox, scope: Scope, subscription: str | None, start: datetime, end: datetime,
                      limit: int) -> list[OutboxEntry]:
    """Spend anomalies of days in ``[start, end)``, newest day first: of ``subscription`` (checked
    against the caller's scope), else of every subscription the caller sees."""
    sub = check_subscription_id(subscription) if subscription is not None else None
    if sub is not None:
        scope.check(sub)
    visible = scope.subscriptions_for((sub,) if sub else ())
    names: Sequence[str | None] = [None] if visible is None else list(visible)
    found = [entry for name in names for entry in outbox.list_alerts(name, None, MAX_LISTED)
             if entry.alert.kind == ANOMALY and start <= entry.alert.period_start < end]
    return sorted(found, key=lambda e: (e.alert.period_start, e.alert.subscription_id), reverse=True)[:limit]


DEFAULT_DAYS = 30


def anomaly_range(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    """``from`` inclusive (default: 30 days before ``to``), ``to`` exclusive for a datetime and
    including the whole day for a date (default: now); at most the report range limit."""
    return parse_range(start, end, now, lambda finish: finish - timedelta(days=DEFAULT_DAYS))
