"""Spend anomalies: is one subscription's day cost far above its own recent normal?  Pure, exact.

The baseline is robust, so one earlier spike (or a holiday) does not move it: the **median** of
the subscription's day costs over the trailing ``window_days`` (28) days before the day, and the
**MAD** (median absolute deviation from that median), scaled by 1.4826 to estimate a standard
deviation.  A day is anomalous when its cost exceeds

    median + max(threshold × 1.4826 × MAD, min_excess)

``min_excess`` is the floor that keeps a cent from alarming (a team going from 0.01 to 0.05 is
not news) and that still alarms a flat history (MAD 0) only for a real jump.  Days without usage
count as cost 0 once the subscription has appeared; a subscription seen for fewer than
``warmup_days`` days before the day (new, or back after a month of silence) is never judged:
there is no normal yet.  Slow, steady growth stays inside the band because the baseline follows
it; a five-fold day does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

MAD_TO_SIGMA = Decimal("1.4826")  # MAD × this ≈ the standard deviation of normally distributed costs


@dataclass(frozen=True)
class AnomalyRule:
    window_days: int = 28
    warmup_days: int = 7
    threshold: Decimal = Decimal(4)  # robust z-score above which a day is anomalous
    min_excess: Decimal = Decimal("1.00")  # currency units above the median, at least

    def __post_init__(self) -> None:
        if self.window_days < 2 or not 1 <= self.warmup_days <= self.window_days:
            raise ValueError("need window_days >= 2 and 1 <= warmup_days <= window_days")
        if self.threshold <= 0 or self.min_excess < 0:
            raise ValueError("threshold must be positive and min_excess not negative")


@dataclass(frozen=True)
class Anomaly:
    subscription_id: str
    day: date
    cost: Decimal
    baseline: Decimal  # the median day cost of the window
    spread: Decimal  # 1.4826 × MAD
    limit: Decimal  # the cost above which the day counts as anomalous
    history_days: int  # days the baseline was computed from


def median(values: Sequence[Decimal]) -> Decimal:
    if not values:
        raise ValueError("median of nothing")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2  # exact: halving a Decimal never rounds here


def judge(subscription_id: str, day: date, cost: Decimal, history: Mapping[date, Decimal], first_seen: date,
          rule: AnomalyRule = AnomalyRule()) -> Anomaly | None:
    """The anomaly ``day``'s ``cost`` is, given the subscription's earlier day costs; ``None`` when
    it is normal or the subscription is still warming up (``first_seen``: its first day of usage)."""
    window = [day - timedelta(days=back) for back in range(1, rule.window_days + 1)]
    considered = [d for d in window if d >= first_seen]
    if len(considered) < rule.warmup_days:
        return None
    values = [history.get(d, Decimal(0)) for d in considered]
    center = median(values)
    spread = MAD_TO_SIGMA * median([abs(v - center) for v in values])
    limit = center + max(rule.threshold * spread, rule.min_excess)
    if cost <= limit:
        return None
    return Anomaly(subscription_id, day, cost, center, spread, limit, len(considered))
