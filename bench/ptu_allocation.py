"""Bench: PTU allocation over a month of hourly rows (1,000 subscriptions x 5 provisioned deployments).

Five GlobalProvisionedManaged deployments of 100 PTUs; each subscription sends traffic to one of
them (``s % 5``) in one hour out of four, so every hour of every deployment has ~50 users and a
quarter of the users' hours are busy: 186,000 hour rows for the month.  Measured: pricing the
month's PTU lines (``ptu_cost_lines`` per deployment, the exact largest-remainder split of every
hour, the key split and the cost lines), then checked: the lines add up to 5 x 100 PTUs x 720
hours x 1.00 exactly.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from bench.common import Result, say

MONTH = datetime(2026, 11, 1, tzinfo=UTC)
DEPLOYMENTS = 5
PTUS = 100


def run(tiny: bool = False) -> list[Result]:
    from shared.core.costing_rules import Pricing
    from shared.core.deployments import Deployment, DeploymentCatalog, Source
    from shared.core.meters import load_default_meters
    from shared.core.pricing import PriceTable
    from shared.core.ptu_lines import ptu_cost_lines
    from shared.core.usage import Counters, Granularity, UsageKey, UsageRow

    subscriptions = 20 if tiny else 1_000
    deployments = 1 if tiny else DEPLOYMENTS  # the month's 720 hours are priced per deployment, whatever the size
    hours = 30 * 24
    names = [f"ptu-{d}" for d in range(deployments)]
    catalog = DeploymentCatalog(Deployment(name, "/subscriptions/s/resourceGroups/rg/providers/"
                                           "Microsoft.CognitiveServices/accounts/bench", "gpt-4o", "2024-08-06",
                                           "GlobalProvisionedManaged", "eastus2", PTUS, MONTH - timedelta(days=1),
                                           Source.MANUAL) for name in names)
    meters = load_default_meters()
    pricing = Pricing.of(PriceTable("USD", ()), meters=meters.book, meters_as_of=date.fromisoformat(meters.as_of),
                         catalog=catalog)
    rows = [UsageRow(Granularity.HOUR, MONTH + timedelta(hours=h),
                     UsageKey(f"sub-{s:05d}", f"product-{s % 7}", "gpt-4o-2024-08-06", names[s % deployments]),
                     Counters(requests=1, prompt_tokens=900 + s % 97, cached_tokens=s % 13,
                              completion_tokens=300 + h % 41, total_tokens=1200 + s % 97 + h % 41))
            for s in range(subscriptions) for h in range(hours) if (h + s) % 4 == 0]
    say(f"{len(rows):,} hour rows: {subscriptions:,} subscriptions x {deployments} PTU deployments of {PTUS} PTUs, "
        f"one hour in four busy per subscription")
    began = time.perf_counter()
    lines = [line for name in names for _, line in ptu_cost_lines(name, pricing, rows, MONTH)]
    seconds = time.perf_counter() - began
    total = sum((line.billed_cost or Decimal(0) for line in lines), Decimal(0))
    expected = Decimal(deployments * PTUS * hours)  # 1.00 per PTU-hour (Global, eastus2)
    assert total == expected, f"PTU lines sum to {total}, the hours cost {expected}"
    users = sum(1 for line in lines if line.subscription_id != "unallocated-capacity")
    say(f"{len(lines):,} cost lines ({users:,} allocated shares) in {seconds:.2f}s; total {total} = "
        f"{deployments} x {PTUS} PTUs x {hours} h x 1.00 exactly")
    return [Result("PTU allocation, a month of hourly rows", seconds, " s",
                   detail=f"{len(rows):,} hour rows, {subscriptions:,} subscriptions x {deployments} deployments, "
                          f"{len(lines):,} lines"),
            Result("PTU allocation rate", len(rows) / seconds, " hour rows/s", higher=True)]
