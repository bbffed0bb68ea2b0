"""Spend anomaly rule on synthetic histories: a spike alarms, slow growth does not, a new
subscription does not alarm in its first week, a cent never alarms."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from shared.core.anomalies import AnomalyRule, judge, median

DAY = date(2026, 11, 30)


def history(costs: list[str], end: date = DAY) -> dict[date, Decimal]:
    """``costs`` for the days before ``end``, oldest first."""
    return {end - timedelta(days=len(costs) - i): Decimal(c) for i, c in enumerate(costs)}


def test_median_is_exact() -> None:
    assert median([Decimal("1"), Decimal("2")]) == Decimal("1.5")
    assert median([Decimal("3"), Decimal("1"), Decimal("2")]) == Decimal("2")


def test_a_fivefold_spike_alarms_with_its_baseline() -> None:
    past = history(["10.00", "11.00", "9.00", "10.50", "9.50"] * 6)  # 30 days, median 10.00
    found = judge("team-a", DAY, Decimal("50.00"), past, first_seen=DAY - timedelta(days=30))
    assert found is not None
    # the last 28 days: 10.00, 11.00, 9.00, 10.50, 9.50 repeated -> median 10.00, MAD 0.50
    assert found.baseline == Decimal("10.00")
    assert found.spread == Decimal("1.4826") * Decimal("0.50")
    assert found.limit == Decimal("10.00") + 4 * Decimal("1.4826") * Decimal("0.50")
    assert found.history_days == 28


def test_normal_day_and_slow_growth_do_not_alarm() -> None:
    past = history(["10.00", "11.00", "9.00", "10.50", "9.50"] * 6)
    assert judge("team-a", DAY, Decimal("12.00"), past, first_seen=DAY - timedelta(days=30)) is None
    growing = [str((Decimal("10") * Decimal("1.03") ** i).quantize(Decimal("0.01"))) for i in range(40)]
    today = Decimal("10") * Decimal("1.03") ** 40
    assert judge("team-b", DAY, today.quantize(Decimal("0.01")), history(growing),
                 first_seen=DAY - timedelta(days=40)) is None


@pytest.mark.parametrize("days_seen", [0, 1, 6])
def test_a_new_subscription_does_not_alarm_in_its_first_week(days_seen: int) -> None:
    past = history(["1.00"] * days_seen) if days_seen else {}
    assert judge("new", DAY, Decimal("500.00"), past, first_seen=DAY - timedelta(days=days_seen)) is None


def test_after_the_warm_up_week_a_spike_alarms() -> None:
    past = history(["1.00"] * 7)
    found = judge("new", DAY, Decimal("500.00"), past, first_seen=DAY - timedelta(days=7))
    assert found is not None and found.history_days == 7


def test_a_cent_never_alarms_but_a_flat_history_still_catches_a_real_jump() -> None:
    flat = history(["0.01"] * 28)
    assert judge("tiny", DAY, Decimal("0.90"), flat, first_seen=DAY - timedelta(days=60)) is None
    found = judge("tiny", DAY, Decimal("1.02"), flat, first_seen=DAY - timedelta(days=60))
    assert found is not None and found.limit == Decimal("1.01")


def test_days_without_usage_count_as_zero_after_the_first_day() -> None:
    sparse = {DAY - timedelta(days=20): Decimal("100.00")}  # one busy day, then nothing
    found = judge("sparse", DAY, Decimal("5.00"), sparse, first_seen=DAY - timedelta(days=20))
    assert found is not None and found.baseline == 0 and found.history_days == 20


def test_rule_bounds_are_checked() -> None:
    with pytest.raises(ValueError):
        AnomalyRule(window_days=5, warmup_days=6)
