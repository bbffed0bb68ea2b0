"""The forecast rule of quota alerts (shared/core/alerting.py), pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from shared.core.alerting import FORECAST_MIN_ELAPSED, forecast, forecast_due

S, E = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)


# -- forecast math (pure) ---------------------------------------------------------------------------
def test_forecast_projects_the_average_burn_rate() -> None:
    # half the quota used in the first 10 of 30 days: 150 % by the end, 100 % reached on day 20
    result = forecast(Fraction(1, 2), S, E, datetime(2026, 11, 11, tzinfo=UTC))
    assert result is not None
    assert result.projected_share == Fraction(3, 2)
    assert result.reaches_limit_at == datetime(2026, 11, 21, tzinfo=UTC)
    # a day period: 30 % by 06:00 -> 120 % at midnight, 100 % at 20:00
    day = datetime(2026, 11, 5, tzinfo=UTC)
    result = forecast(Fraction(3, 10), day, day + timedelta(days=1), day + timedelta(hours=6))
    assert result is not None and result.projected_share == Fraction(6, 5)
    assert result.reaches_limit_at == day + timedelta(hours=20)


def test_forecast_alert_rule() -> None:
    t = datetime(2026, 11, 11, tzinfo=UTC)  # a third of November
    assert forecast_due(Fraction(1, 2), S, E, t) is not None
    assert forecast_due(Fraction(1, 3), S, E, t) is None  # exactly 100 % at the end: not *before* it
    assert forecast_due(Fraction(1, 3) + Fraction(1, 10**9), S, E, t) is not None
    assert forecast_due(Fraction(1), S, E, t) is None  # already at 100 %: the threshold alert covers it
    assert forecast_due(Fraction(0), S, E, t) is None
    early = S + (E - S) * 0.09  # 9 % of the period: too early to extrapolate
    assert Fraction(1, 10) == FORECAST_MIN_ELAPSED
    assert forecast_due(Fraction(1, 2), S, E, early) is None
    assert forecast_due(Fraction(1, 2), S, E, S + (E - S) / 10) is not None
    assert forecast(Fraction(1, 2), S, E, E) is None and forecast(Fraction(1, 2), S, E, S) is None
    low = forecast(Fraction(1, 10), S, E, t)
    assert low is not None and low.projected_share == Fraction(3, 10) and low.reaches_limit_at is None
