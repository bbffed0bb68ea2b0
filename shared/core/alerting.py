"""Which quota alerts are due, the forecast rule, and what goes into an alert: pure, no I/O.

**Thresholds.**  With used share ``u`` of a quota (the larger of tokens/limit and cost/limit, an
exact fraction), threshold ``t`` % is crossed when ``u >= t / 100``.  Every crossed threshold is an
alert of its own, so a jump from 30 % to 85 % gives the 50 % *and* the 80 % alert; the outbox makes
each (subscription, period, threshold) alert exist once, however often it is evaluated.

**Forecast** (constant average burn rate since the period began).  Period ``[S, E)``, data up to
``T`` (``S < T < E``), used share ``u`` at ``T``; elapsed ``e = T - S``, length ``L = E - S``:

* burn rate ``r = u / e`` (share of the quota per second),
* projected share at the end ``p = u + r * (E - T) = u * L / e``,
* projected time of reaching 100 % ``C = S + e / u`` (for ``u > 0``).

A forecast alert is due iff ``u < 1`` (not already over: the 100 % alert covers that), ``p > 1``
(equivalently ``C < E``: reaching 100 % strictly before the period ends) and ``e >= m * L`` with
``m = FORECAST_MIN_ELAPSED`` (10 %: no projection from the first minutes of a period).  Only the
period containing ``T`` is forecast; closed periods get threshold alerts only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from shared.core.anomalies import Anomaly
from shared.core.keys import period_code
from shared.core.moments import iso
from shared.core.pricing import display, money_text
from shared.core.quotas import Period, Quota, QuotaBook

DEFAULT_THRESHOLDS = (50, 80, 100)
FORECAST_MIN_ELAPSED = Fraction(1, 10)
FORECAST = "forecast"
THRESHOLD = "threshold"
ANOMALY = "anomaly"  # a day cost far above the subscription's own normal (core.anomalies)
QUARANTINE = "quarantine"  # the pipeline's own: rows Table Storage refused are kept aside (tokens = how many)
# Outbox statuses: recorded and not yet delivered everywhere / delivered to every channel /
# a delivery round ended with a channel still failing (retried by later runs up to a limit).
PENDING, SENT, FAILED = "pending", "sent", "failed"
STATUSES = (PENDING, SENT, FAILED)
_MICRO = timedelta(microseconds=1)


def parse_thresholds(text: str) -> tuple[int, ...]:
    """``"50,80,100"`` -> ``(50, 80, 100)``; raises ``ValueError`` with the offending part."""
    values = set()
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            value = int(part.strip().rstrip("%"))
        except ValueError:
            raise ValueError(f"expected whole percentages like 50,80,100, got {part.strip()!r}") from None
        if not 1 <= value <= 1000:
            raise ValueError(f"each threshold must be between 1 and 1000 %, got {value}")
        values.add(value)
    if not values:
        raise ValueError("give at least one threshold")
    return tuple(sorted(values))


def crossed(share: Fraction, thresholds: Sequence[int]) -> list[int]:
    return [t for t in thresholds if share >= Fraction(t, 100)]


@dataclass(frozen=True)
class Forecast:
    projected_share: Fraction  # p: share of the quota used by the end of the period at this rate
    reaches_limit_at: datetime | None  # C when it falls before the period end, else None


def forecast(share: Fraction, start: datetime, end: datetime, as_of: datetime) -> Forecast | None:
    """Projection at the constant average burn rate; ``None`` outside ``(start, end)``."""
    if not start < as_of < end:
        return None
    elapsed = Fraction((as_of - start) // _MICRO)
    length = Fraction((end - start) // _MICRO)
    projected = share * length / elapsed
    # C = S + e/u lies before E exactly when p > 1; later (or never) is reported as None.
    reaches = start + timedelta(microseconds=round(elapsed / share)) if projected > 1 else None
    return Forecast(projected, reaches)


def forecast_due(share: Fraction, start: datetime, end: datetime, as_of: datetime,
                 min_elapsed: Fraction = FORECAST_MIN_ELAPSED) -> Forecast | None:
    """The forecast when an alert is due for it (see the module rule), else ``None``."""
    result = forecast(share, start, end, as_of)
    if result is None or share >= 1 or result.projected_share <= 1:
        return None
    if Fraction((as_of - start) // _MICRO) < min_elapsed * Fraction((end - start) // _MICRO):
        return None
    return result


@dataclass(frozen=True)
class PeriodUsage:
    """Usage of one subscription in one period instance, up to ``as_of``."""

    subscription_id: str
    period: Period
    start: datetime
    end: datetime
    tokens: int
    cost: Decimal
    unpriced_tokens: int = 0


@dataclass(frozen=True)
class Alert:
    subscription_id: str
    period: Period
    period_start: datetime
    period_end: datetime
    kind: str  # THRESHOLD or FORECAST
    threshold: int  # percent; 100 for a forecast (the limit it projects past)
    tokens: int
    max_tokens: int | None
    cost: Decimal
    max_cost: Decimal | None
    currency: str
    unpriced_tokens: int
    percent: Decimal  # used share in %, one decimal (for display; decisions use the exact share)
    as_of: datetime
    projected_percent: Decimal | None = None
    projected_at: datetime | None = None
    baseline_cost: Decimal | None = None  # anomalies: the median day cost it is compared with
    anomaly_limit: Decimal | None = None  # anomalies: the cost above which the day is anomalous

    @property
    def row_key(self) -> str:
        """Deterministic per (period instance, kind, threshold): the outbox's create-if-absent key,
        so a quota alert exists once per threshold and an anomaly once per subscription-day."""
        code = period_code(self.period.granularity, self.period_start)
        if self.kind in (FORECAST, ANOMALY):
            return f"{code}|{self.kind}"
        if self.kind == QUARANTINE:  # once per incident, named by the moment it began
            return f"{code}|{self.kind}|{self.period_start:%H%M%S}"
        return f"{code}|{THRESHOLD}|{self.threshold:04d}"

    @property
    def alert_id(self) -> str:
        """Stable id for receivers to de-duplicate on (a redelivery carries the same id)."""
        return hashlib.sha256(f"{self.subscription_id}\n{self.row_key}".encode()).hexdigest()[:32]

    @property
    def period_label(self) -> str:
        return self.period_start.strftime("%Y-%m-%d" if self.period is Period.DAY else "%Y-%m")


def _percent(share: Fraction) -> Decimal:
    return (Decimal(share.numerator) * 100 / Decimal(share.denominator)).quantize(Decimal("0.1"))


def _alert(usage: PeriodUsage, quota: Quota, share: Fraction, kind: str, threshold: int, as_of: datetime,
           currency: str, found: Forecast | None = None) -> Alert:
    return Alert(usage.subscription_id, usage.period, usage.start, usage.end, kind, threshold, usage.tokens,
                 quota.max_tokens, usage.cost, quota.max_cost, currency, usage.unpriced_tokens, _percent(share), as_of,
                 _percent(found.projected_share) if found else None, found.reaches_limit_at if found else None)


def due_alerts(usages: Iterable[PeriodUsage], book: QuotaBook, thresholds: Sequence[int], as_of: datetime,
               currency: str) -> list[Alert]:
    """Every alert the usages warrant now (already-sent ones included: the outbox de-duplicates)."""
    alerts: list[Alert] = []
    for usage in usages:
        quota = book.effective(usage.subscription_id, usage.period)
        if quota is None:
            continue
        share = quota.fraction(usage.tokens, usage.cost)
        alerts.extend(_alert(usage, quota, share, THRESHOLD, t, as_of, currency) for t in crossed(share, thresholds))
        due = forecast_due(share, usage.start, usage.end, as_of)
        if due is not None:
            alerts.append(_alert(usage, quota, share, FORECAST, 100, as_of, currency, due))
    return alerts


def over_limit(usages: Iterable[PeriodUsage], book: QuotaBook, as_of: datetime) -> dict[str, list[str]]:
    """Subscriptions at or over 100 % of a quota of a period containing ``as_of`` -> why."""
    result: dict[str, list[str]] = {}
    for usage in usages:
        quota = book.effective(usage.subscription_id, usage.period)
        if quota is None or not usage.start <= as_of < usage.end:
            continue
        if quota.fraction(usage.tokens, usage.cost) >= 1:
            label = usage.start.strftime("%Y-%m-%d" if usage.period is Period.DAY else "%Y-%m")
            result.setdefault(usage.subscription_id, []).append(f"{usage.period.value} {label}")
    return result


def anomaly_alert(anomaly: Anomaly, tokens: int, unpriced_tokens: int, currency: str, as_of: datetime) -> Alert:
    """The outbox alert of a spend anomaly (``percent``: the day cost as a share of its baseline)."""
    start = datetime.combine(anomaly.day, datetime.min.time(), UTC)
    percent = (anomaly.cost * 100 / anomaly.baseline).quantize(Decimal("0.1")) if anomaly.baseline else Decimal(0)
    return Alert(anomaly.subscription_id, Period.DAY, start, start + timedelta(days=1), ANOMALY, 0, tokens, None,
                 anomaly.cost, None, currency, unpriced_tokens, percent, as_of,
                 baseline_cost=anomaly.baseline, anomaly_limit=anomaly.limit)


def title(alert: Alert) -> str:
    if alert.kind == QUARANTINE:
        return f"Chargeback rollup: {alert.tokens:,} rows refused by Table Storage are kept in quarantine"
    if alert.kind == ANOMALY:
        return (f"Spend anomaly: {alert.subscription_id} spent {display(alert.cost)} {alert.currency} on "
                f"{alert.period_label}, usually {display(alert.baseline_cost or Decimal(0))}")
    if alert.kind == FORECAST:
        return (f"Quota forecast: {alert.subscription_id} projected at {alert.projected_percent}% "
                f"of its {alert.period.value} quota ({alert.period_label})")
    return (f"Quota alert: {alert.subscription_id} reached {alert.threshold}% of its {alert.period.value} "
            f"quota ({alert.period_label})")


def facts(alert: Alert) -> list[tuple[str, str]]:
    """Human-readable facts for chat cards (no prompt text, no keys, no URLs: usage numbers only)."""
    if alert.kind == QUARANTINE:
        return [("Rows in quarantine", f"{alert.tokens:,}"),
                ("Since", alert.period_start.strftime("%Y-%m-%d %H:%M UTC")),
                ("Meanwhile", "every other row is written; each rollup run retries these")]
    if alert.kind == ANOMALY:
        return [("Subscription", alert.subscription_id), ("Day", f"{alert.period_label} (UTC)"),
                ("Cost", f"{display(alert.cost)} {alert.currency}"),
                ("Usual day (28-day median)", f"{display(alert.baseline_cost or Decimal(0))} {alert.currency}"),
                ("Anomalous above", f"{display(alert.anomaly_limit or Decimal(0))} {alert.currency}"),
                ("Tokens", f"{alert.tokens:,}"), ("Data up to", alert.as_of.strftime("%Y-%m-%d %H:%M UTC"))]
    rows = [("Subscription", alert.subscription_id), ("Period", f"{alert.period.value} {alert.period_label} (UTC)"),
            ("Used", f"{alert.percent}%")]
    rows.append(("Tokens", f"{alert.tokens:,}" + (f" of {alert.max_tokens:,}" if alert.max_tokens else "")))
    cost = f"{display(alert.cost)} {alert.currency}"
    rows.append(("Cost", cost + (f" of {display(alert.max_cost)} {alert.currency}" if alert.max_cost else "")))
    if alert.unpriced_tokens:
        rows.append(("Unpriced tokens", f"{alert.unpriced_tokens:,}"))
    if alert.kind == FORECAST:
        rows.append(("Projected at period end", f"{alert.projected_percent}%"))
        if alert.projected_at is not None:
            rows.append(("Projected to reach 100%", alert.projected_at.strftime("%Y-%m-%d %H:%M UTC")))
    rows.append(("Data up to", alert.as_of.strftime("%Y-%m-%d %H:%M UTC")))
    return rows



def alert_document(alert: Alert) -> dict[str, object]:
    """An alert as JSON: the generic webhook body and the API's alert fields (usage numbers only)."""
    return {
        "type": {ANOMALY: "chargeback.spend.anomaly", QUARANTINE: "chargeback.pipeline.quarantine"}.get(
            alert.kind, "chargeback.quota.alert"),
        "version": 1,
        "alertId": alert.alert_id,
        "kind": alert.kind,
        "threshold": alert.threshold,
        "title": title(alert),
        "subscriptionId": alert.subscription_id,
        "period": alert.period.value,
        "periodStart": iso(alert.period_start),
        "periodEnd": iso(alert.period_end),
        "percent": str(alert.percent),
        "tokens": alert.tokens,
        "tokenLimit": alert.max_tokens,
        "cost": money_text(alert.cost),
        "costLimit": None if alert.max_cost is None else money_text(alert.max_cost),
        "currency": alert.currency,
        "unpricedTokens": alert.unpriced_tokens,
        "projectedPercent": None if alert.projected_percent is None else str(alert.projected_percent),
        "projectedAt": iso(alert.projected_at),
        "asOf": iso(alert.as_of),
        "baselineCost": None if alert.baseline_cost is None else money_text(alert.baseline_cost),
        "anomalyLimit": None if alert.anomaly_limit is None else money_text(alert.anomaly_limit),
    }
