"""A period priced from its finer rows once per stretch between changes (``refined_cost``) costs exactly
what pricing every finer row on its own costs: same amount, split, list cost and unpriced tokens,
malformed counters (capped per row) included; and the month report through it equals its lines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.costing_rules import refined_cost, token_cost
from shared.core.pricing import sum_costs
from shared.core.rate_overrides import RateOverride, RateOverrideBook
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge
from shared.services.costing import month_cost_lines, monthly_chargeback, usage_costs
from tests.fakes import InMemoryUsageRepository
from tests.unit.test_costing_engine import NOV, pricing, row, version

KEY = UsageKey("team-a", "p1", "gpt-4o-2024-08-06", "chat")
CHANGE = NOV + timedelta(days=14)  # the deployment moves from Global to Data Zone on 15 Nov
ENGINE = pricing(version("chat", "GlobalStandard", NOV - timedelta(days=30)),
                 version("chat", "DataZoneStandard", CHANGE),
                 overrides=RateOverrideBook([RateOverride("gpt-4o", "datazone", date(2026, 11, 20), Decimal("10"))]))

counts = st.integers(min_value=-5, max_value=3_000_000)
counters = st.builds(Counters, prompt_tokens=counts, cached_tokens=counts, completion_tokens=counts,
                     audio_prompt_tokens=counts, cached_audio_tokens=counts, audio_completion_tokens=counts,
                     cache_write_tokens=counts, reasoning_tokens=counts)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=29), counters), min_size=1, max_size=12))
def test_refined_cost_equals_the_sum_of_each_rows_cost(days: list[tuple[int, Counters]]) -> None:
    rows = [UsageRow(Granularity.DAY, NOV + timedelta(days=d), KEY, c) for d, c in days]
    assert refined_cost(KEY, rows, ENGINE) == sum_costs(token_cost(r, ENGINE) for r in rows)


def test_a_month_with_a_change_inside_costs_what_its_days_cost() -> None:
    days = [row("team-a", NOV + timedelta(days=d), prompt_tokens=1_000_000 + d, cached_tokens=1000 * d,
                completion_tokens=200_000 + 7 * d) for d in range(30)]
    days.append(row("team-a", NOV + timedelta(days=3), model="gpt-4o-mini", deployment="chat",
                    prompt_tokens=5, cached_tokens=9))  # malformed: cached above prompt (capped, alone)
    store = InMemoryUsageRepository()
    store.upsert([*days, *merge(days, Granularity.MONTH)])
    months = store.read_all(Granularity.MONTH, NOV, NOV + timedelta(days=30))
    costs = usage_costs(months, store, ENGINE)
    by_day = [sum_costs(token_cost(d, ENGINE) for d in days if d.key == m.key) for m in months]
    assert costs == by_day
    assert sum((c.amount for c in costs), Decimal(0)) == sum(
        (line.billed_cost or Decimal(0) for line in month_cost_lines(store, ENGINE, NOV)), Decimal(0))
    assert set(costs[0].by_deployment_type) == {"global", "datazone"} and "override" in costs[0].by_basis
    assert monthly_chargeback(store, lambda: ENGINE, datetime(2026, 11, 5, tzinfo=UTC)).total_cost == sum_costs(costs)
