"""Priority processing: a per-request service tier priced by the Priority ("pp") retail meters.

The 2025-08-25 feed rows (tests/data/retail-examples.json) hold no Priority meter: priority tokens
priced from them are unpriced, named by the meter key that is missing.  Where a Priority price is
needed, rows are built in the feed's own shape from a real row (``pp`` in the meter name, parsed by
the real parser); their amounts are test values, not Azure's prices."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from shared.core.costing_rules import token_cost, token_lines
from shared.core.deployments import Deployment, ServiceTier, priority_offered, sku_kind
from shared.core.meters import PriceBook, parse_feed
from shared.core.rate_overrides import RateOverride, RateOverrideBook
from tests.unit.test_costing_engine import FEED, NOV, pricing, row, version

M = Decimal(1_000_000)
PRIORITY = ServiceTier.PRIORITY
GPT5_VERSION = "2025-08-07"


def feed_rows() -> list[dict[str, Any]]:
    return [entry["row"] for entry in json.loads(FEED.read_text(), parse_float=Decimal)["rows"]]


def priority_book() -> PriceBook:
    """The real feed plus GPT-5 Priority rows in the feed's shape (copied from the real GPT-5 input row)."""
    rows = feed_rows()
    template = next(r for r in rows if r["meterName"] == "GPT 5 Rsng Inpt Glbl 1M Tokens")
    made = []
    for name, price in (("GPT 5 pp Inpt Glbl 1M Tokens", "2.5"), ("GPT 5 pp cchd Inpt Glbl 1M Tokens", "0.25"),
                        ("GPT 5 pp Outpt Glbl 1M Tokens", "20")):
        made.append({**template, "meterName": name, "skuName": name.removesuffix(" Tokens"),
                     "meterId": f"test-{name}", "retailPrice": Decimal(price), "unitPrice": Decimal(price)})
    parsed = parse_feed([*rows, *made])
    assert not parsed.failures, parsed.failures
    return PriceBook("USD", parsed.prices)


def gpt5(sku: str = "GlobalStandard") -> Deployment:
    return replace(version("chat", sku, datetime(2026, 1, 1, tzinfo=UTC), model="gpt-5"), model_version=GPT5_VERSION)


def test_priority_is_offered_on_global_and_data_zone_standard_only() -> None:
    offered = {sku: priority_offered(kind) for sku in ("GlobalStandard", "DataZoneStandard", "Standard", "GlobalBatch",
                                                        "GlobalProvisionedManaged")
               if (kind := sku_kind(sku)) is not None}
    assert offered == {"GlobalStandard": True, "DataZoneStandard": True, "Standard": False, "GlobalBatch": False,
                       "GlobalProvisionedManaged": False}


def test_priority_tokens_without_a_priority_meter_in_the_real_feed_are_unpriced_never_standard() -> None:
    day = row("team-a", NOV, prompt_tokens=1_000_000, cached_tokens=200_000, completion_tokens=50_000)
    engine = pricing(version("chat", "GlobalStandard", NOV))  # gpt-4o 2024-08-06, the real feed rows
    result = token_cost(day, engine, PRIORITY)
    assert result.amount == 0 and result.unpriced_tokens == 1_050_000
    assert result.unpriced_meters == {
        "chat: input (no retail meter gpt-4o|0806|global|priority|eastus2|input|| in force)",
        "chat: cached_input (no retail meter gpt-4o|0806|global|priority|eastus2|cached_input|| in force)",
        "chat: output (no retail meter gpt-4o|0806|global|priority|eastus2|output|| in force)"}
    assert {line.mode for line in token_lines(day, engine, PRIORITY)} == {"priority"}
    # the same tokens at the default tier: the real standard meters (2.50 / 1.25 / 10.00)
    assert token_cost(day, engine).amount == (800_000 * Decimal("2.50") + 200_000 * Decimal("1.25")
                                              + 50_000 * Decimal("10.00")) / M


def test_priority_tokens_are_priced_by_the_priority_meters() -> None:
    engine = pricing(gpt5(), book=priority_book())
    day = row("team-a", NOV, model="gpt-5", prompt_tokens=3_000_000, cached_tokens=1_000_000,
              completion_tokens=400_000, reasoning_tokens=300_000)
    priority = token_cost(day, engine, PRIORITY)
    expected = {"input": 2_000_000 * Decimal("2.5") / M, "cached_input": 1_000_000 * Decimal("0.25") / M,
                "output": 400_000 * Decimal("20") / M}  # reasoning is inside output: billed once
    assert priority.by_kind == expected and priority.amount == Decimal("5.0") + Decimal("0.25") + Decimal("8.0")
    assert priority.by_basis == {"payg": priority.amount} and not priority.unpriced_meters
    lines = token_lines(day, engine, PRIORITY)
    assert {(line.token_kind, line.mode, line.meter_id) for line in lines} == {
        ("input", "priority", "test-GPT 5 pp Inpt Glbl 1M Tokens"),
        ("cached_input", "priority", "test-GPT 5 pp cchd Inpt Glbl 1M Tokens"),
        ("output", "priority", "test-GPT 5 pp Outpt Glbl 1M Tokens")}
    # default tier on the same deployment: the real GPT-5 standard rows (input 1.25, cached 0.125; no output row)
    standard = token_cost(day, engine)
    assert standard.by_kind == {"input": 2_000_000 * Decimal("1.25") / M,
                                "cached_input": 1_000_000 * Decimal("0.125") / M}
    assert standard.unpriced_tokens == 400_000


def test_priority_tokens_on_a_batch_deployment_or_an_uncatalogued_one_are_unpriced_with_the_reason() -> None:
    day = row("team-a", NOV, prompt_tokens=1_000, completion_tokens=10)
    batch = token_cost(day, pricing(version("chat", "GlobalBatch", NOV)), PRIORITY)
    assert batch.amount == 0 and batch.unpriced_tokens == 1_010
    assert batch.unpriced_meters == {
        f"chat: {kind} (priority processing is not offered on SKU GlobalBatch (GlobalStandard and DataZoneStandard "
        "only))" for kind in ("input", "output")}
    elsewhere = row("team-a", NOV, deployment="not-in-catalog", prompt_tokens=1_000)
    uncatalogued = token_cost(elsewhere, pricing(), PRIORITY)
    assert uncatalogued.amount == 0 and uncatalogued.unpriced_tokens == 1_000
    assert uncatalogued.uncatalogued == {"not-in-catalog"}
    assert token_cost(elsewhere, pricing()).amount == 1_000 * Decimal("2.50") / M  # default tier: the price file


def test_a_negotiated_discount_applies_to_priority_meters_of_its_family() -> None:
    overrides = RateOverrideBook([RateOverride("gpt-5", "global", date(2026, 1, 1), Decimal("20"))])
    engine = pricing(gpt5(), book=priority_book(), overrides=overrides)
    day = row("team-a", NOV, model="gpt-5", prompt_tokens=1_000_000)
    result = token_cost(day, engine, PRIORITY)
    assert result.amount == Decimal("2.0") and result.list_amount == Decimal("2.5")
    assert result.by_basis == {"override": Decimal("2.0")}
