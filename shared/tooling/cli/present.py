"""How the ``chargeback`` command line shows results: tables and lines for people, CSV for files.

Costs are rounded to cents for people here, and only here; the CSV is the API's (exact costs).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.api.presenters import chargeback_csv
from shared.core.access import Grant
from shared.core.pricing import Cost, PriceTable, display, money_text
from shared.core.quotas import Quota
from shared.core.usage import Counters
from shared.ports import OutboxEntry
from shared.services.costing import Chargeback

__all__ = ["alert_lines", "chargeback_csv", "chargeback_text", "grant_lines", "price_lines", "quota_lines"]


def chargeback_text(report: Chargeback) -> str:
    """A table for people: one line per subscription, a total, and the models that had no price.

    With several APIM services, a line is per subscription *and* service (two gateways' subscriptions
    of the same name are two lines): an ``apim service`` column then tells them apart.  It is left out
    when no line names a service (one gateway, or services merged), so that table looks as it did.
    """
    services = any(ln.apim_service for ln in report.lines)
    service_width = max([len("apim service"), *(len(ln.apim_service) for ln in report.lines)]) + 2
    header = (f"{'subscription':<24}{'apim service':<{service_width}}" if services else f"{'subscription':<24}") + (
        f"{'requests':>10}{'prompt':>13}{'cached':>12}{'completion':>13}"
        f"{'total':>14}{'cost ' + report.currency:>14}{'unpriced':>12}")
    out = [f"chargeback {report.month:%Y-%m} (prices: {report.price_source})", header, "-" * len(header)]

    def line(name: str, apim_service: str, c: Counters, cost: Cost) -> str:
        # a name longer than its column keeps a space before the next one (two names never run together)
        label = f"{name:<23} " + (f"{apim_service:<{service_width}}" if services else "")
        return (f"{label}{c.requests:>10}{c.prompt_tokens:>13}{c.cached_tokens:>12}{c.completion_tokens:>13}"
                f"{c.total_tokens:>14}{display(cost.amount):>14}{cost.unpriced_tokens:>12}")

    out.extend(line(ln.subscription_id, ln.apim_service, ln.counters, ln.cost) for ln in report.lines)
    out.append("-" * len(header))
    out.append(line("TOTAL", "", report.total_counters, report.total_cost))
    unpriced = sorted(report.total_cost.unpriced_models)
    if unpriced:
        out.append(f"unpriced models (tokens not in cost): {', '.join(unpriced)}")
    return "\n".join(out)


def quota_lines(quotas: Sequence[Quota]) -> list[str]:
    lines = []
    for quota in quotas:
        limits = [f"{quota.max_tokens:,} tokens" if quota.max_tokens else "",
                  f"{money_text(quota.max_cost)} cost" if quota.max_cost is not None else ""]
        lines.append(f"{quota.subscription_id:<32}{quota.period.value:<7}{' + '.join(x for x in limits if x)}")
    return lines


def price_lines(table: PriceTable) -> list[str]:
    lines = [f"currency {table.currency}, per 1M tokens (source: {table.source})"]
    for entry in sorted(table.prices, key=lambda p: (p.model.lower(), p.effective_from)):
        lines.append(f"{entry.model:<28}{entry.effective_from.isoformat():<12}input {entry.input:<8}"
                     f"cached {entry.cached_input:<8}output {entry.output}")
    lines.extend(f"prefix {rule.prefix!r} -> {rule.model}" for rule in table.prefix_rules)
    return lines


def alert_lines(entries: Sequence[OutboxEntry]) -> list[str]:
    lines = []
    for entry in entries:
        alert = entry.alert
        what = "forecast" if alert.kind == "forecast" else f"{alert.threshold}%"
        lines.append(f"{entry.created_at:%Y-%m-%d %H:%M}  {alert.subscription_id:<28}{alert.period.value:<6}"
                     f"{alert.period_label:<11}{what:<9}{alert.percent:>7}%  cost {display(alert.cost)}  "
                     f"{entry.status} ({entry.attempts} rounds){'  ' + entry.last_error if entry.last_error else ''}")
    return lines


def grant_lines(grants: Sequence[Grant]) -> list[str]:
    return [f"{grant.principal:<48}{grant.role:<8}{', '.join(sorted(grant.subscriptions))}" for grant in grants]
