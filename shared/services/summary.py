"""One subscription's month at a glance: totals, cost, quota use, unmetered calls, top models, days.

Everything comes from the subscription's own partition (its day rows of the month: one RowKey-range
read) and the quota store; quota shares use the same rules as the alerts (``Quota.fraction``, the
``*`` default per period, thresholds crossed at ``share >= t/100``, the constant-burn forecast).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from shared.core.alerting import _percent, crossed, forecast
from shared.core.pricing import Cost, PriceTable, money_text, row_cost, sum_costs
from shared.core.quotas import DEFAULT_SUBSCRIPTION, Period, QuotaBook, quota_json
from shared.core.usage import Counters, Granularity
from shared.ports import QuotaRepository, UsageRepository
from shared.services.costing import next_month
from shared.services.report import cost_json

TOP_MODELS = 10


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _usage(counters: Counters) -> dict[str, int]:
    return {"requests": counters.requests, "promptTokens": counters.prompt_tokens,
            "cachedTokens": counters.cached_tokens, "completionTokens": counters.completion_tokens,
            "totalTokens": counters.total_tokens, "errorRequests": counters.error_requests,
            "unmeteredRequests": counters.unmetered_requests}


def _quota_status(book: QuotaBook, subscription: str, period: Period, start: datetime, end: datetime,
                  as_of: datetime, tokens: int, cost: Cost, thresholds: Sequence[int]) -> dict[str, object] | None:
    quota = book.effective(subscription, period)
    if quota is None:
        return None
    share = quota.fraction(tokens, cost.amount)
    projection = forecast(share, start, end, as_of) if share else None
    return {
        **quota_json(quota),
        "source": "default" if quota.subscription_id == DEFAULT_SUBSCRIPTION else "own",
        "periodStart": _iso(start),
        "usedTokens": tokens,
        "usedCost": money_text(cost.amount),
        "usedPercent": float(_percent(share)),
        "thresholdsReached": crossed(share, thresholds),
        "projectedPercent": None if projection is None else float(_percent(projection.projected_share)),
    }


def subscription_summary(repository: UsageRepository, table: PriceTable, quotas: QuotaRepository,
                         thresholds: Sequence[int], subscription: str, month: datetime,
                         now: datetime) -> dict[str, object]:
    end = next_month(month)
    rows = repository.read(subscription, Granularity.DAY, month, end)
    costs = [row_cost(row, table) for row in rows]
    counters = sum((row.counters for row in rows), Counters())
    cost = sum_costs(costs)

    days: dict[datetime, tuple[Counters, Cost]] = {}
    models: dict[str, tuple[Counters, Cost]] = {}
    for row, row_cost_ in zip(rows, costs, strict=True):
        so_far = days.get(row.period_start, (Counters(), Cost()))
        days[row.period_start] = (so_far[0] + row.counters, so_far[1] + row_cost_)
        model = models.get(row.key.model, (Counters(), Cost()))
        models[row.key.model] = (model[0] + row.counters, model[1] + row_cost_)

    # Every day of the month up to today (or the whole month when it is over), zeros included.
    last = min(end, Granularity.DAY.period_start(now) + timedelta(days=1))
    series = []
    day = month
    while day < last:
        day_counters, day_cost = days.get(day, (Counters(), Cost()))
        series.append({"day": day.date().isoformat(), **_usage(day_counters),
                       **cost_json(day_cost, table.currency)})
        day += timedelta(days=1)

    top = sorted(models.items(), key=lambda item: (-item[1][0].total_tokens, item[0]))[:TOP_MODELS]
    book = QuotaBook([*quotas.for_subscription(subscription), *quotas.for_subscription(DEFAULT_SUBSCRIPTION)])
    as_of = min(max(now, month), end)
    month_quota = _quota_status(book, subscription, Period.MONTH, month, end, as_of, counters.total_tokens, cost,
                                thresholds)
    day_quota = None
    if month <= now < end:  # today's use against the day quota, only while the month is running
        today = Granularity.DAY.period_start(now)
        today_counters, today_cost = days.get(today, (Counters(), Cost()))
        day_quota = _quota_status(book, subscription, Period.DAY, today, today + timedelta(days=1), now,
                                  today_counters.total_tokens, today_cost, thresholds)
    return {
        "subscriptionId": subscription,
        "month": month.strftime("%Y-%m"),
        "currency": table.currency,
        "totals": {**_usage(counters), **cost_json(cost, table.currency),
                   "unpricedModels": sorted(cost.unpriced_models)},
        "unmetered": {"requests": counters.unmetered_requests, "streamed": counters.unmetered_streamed,
                      "truncated": counters.unmetered_truncated},
        "quota": {"month": month_quota, "day": day_quota},
        "thresholds": list(thresholds),
        "topModels": [{"model": name, **_usage(c), **cost_json(m_cost, table.currency)}
                      for name, (c, m_cost) in top],
        "days": series,
    }
