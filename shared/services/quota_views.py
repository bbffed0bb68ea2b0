"""What a caller may read of quotas and alerts: its own subscriptions' (and the ``*`` default that
applies to them), each read from its own partition, never a scan of everyone's."""

from __future__ import annotations

from dataclasses import dataclass

from shared.core.access import Scope
from shared.core.quotas import DEFAULT_SUBSCRIPTION, Period, Quota, check_subscription_id
from shared.ports import AlertOutbox, OutboxEntry, QuotaRepository


def visible_quotas(quotas: QuotaRepository, scope: Scope) -> list[Quota]:
    return [q for q in quotas.all() if q.subscription_id == DEFAULT_SUBSCRIPTION or scope.allows(q.subscription_id)]


@dataclass(frozen=True)
class QuotaView:
    subscription_id: str
    own: list[Quota]
    effective: dict[Period, tuple[Quota, bool] | None]  # per period: the quota in force, and whether it is own


def quota_view(quotas: QuotaRepository, scope: Scope, subscription: str) -> QuotaView:
    """A subscription's own quotas and, per period, the one in force (own, else the ``*`` default)."""
    sub = check_subscription_id(subscription)
    if sub != DEFAULT_SUBSCRIPTION:
        scope.check(sub)
    own = quotas.for_subscription(sub)
    defaults = {q.period: q for q in quotas.for_subscription(DEFAULT_SUBSCRIPTION)}
    effective: dict[Period, tuple[Quota, bool] | None] = {}
    for period in Period:
        mine = next((q for q in own if q.period is period), None)
        chosen = mine or (defaults.get(period) if sub != DEFAULT_SUBSCRIPTION else None)
        effective[period] = None if chosen is None else (chosen, mine is not None)
    return QuotaView(sub, own, effective)


def visible_alerts(outbox: AlertOutbox, scope: Scope, subscription: str | None, status: str | None,
                   limit: int) -> list[OutboxEntry]:
    """Alerts newest first: of ``subscription`` (checked against the scope), else of all the caller sees."""
    sub = check_subscription_id(subscription) if subscription is not None else None
    if sub is not None:
        scope.check(sub)
    visible = scope.subscriptions_for((sub,) if sub else ())
    if visible is None:
        return outbox.list_alerts(None, status, limit)
    # one partition per subscription, never a scan of everyone's alerts
    found = [e for name in visible for e in outbox.list_alerts(name, status, limit)]
    return sorted(found, key=lambda e: (e.created_at, e.alert.row_key), reverse=True)[:limit]
