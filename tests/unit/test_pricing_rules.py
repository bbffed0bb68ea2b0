"""Pricing rules: price files, name resolution, dated prices, exact decimal costs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from shared.core.pricing import (
    Cost,
    PriceFileError,
    display,
    money_text,
    parse_price_file,
    row_cost,
    sum_costs,
)
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.services.costing import DEFAULT_PRICES, PriceCatalog
from tests.billing_support import (
    ALPHA_MINI,
    ALPHA_NEW,
    ALPHA_OLD,
    PRICE_FILE,
    expected_cost,
)

TABLE = parse_price_file(json.dumps(PRICE_FILE), "test")


def day_row(day: int, model: str, prompt: int, cached: int, completion: int, sub: str = "team-a",
            granularity: Granularity = Granularity.DAY) -> UsageRow:
    return UsageRow(granularity, datetime(2026, 11, day, tzinfo=UTC), UsageKey(sub, "p", model, model),
                    Counters(requests=1, prompt_tokens=prompt, cached_tokens=cached, completion_tokens=completion,
                             total_tokens=prompt + completion))


# -- pure -------------------------------------------------------------------------------------------
def test_exact_name_then_longest_prefix_whatever_the_rule_order() -> None:
    reordered = dict(PRICE_FILE, prefixRules=list(reversed(PRICE_FILE["prefixRules"])))
    for table in (TABLE, parse_price_file(json.dumps(reordered), "reordered")):
        assert table.resolve("alpha") == "alpha"
        assert table.resolve("ALPHA-2026-08-01") == "alpha"
        assert table.resolve("alpha-mini-2026-07-18") == "alpha-mini"  # not "alpha": the longer prefix wins
        assert table.resolve("alpha-turbo") is None  # no rule matches "alpha-t..."
        assert table.resolve("unknown") is None
    default = PriceCatalog(None).current()
    assert default.resolve("gpt-4o-2024-05-13") == "gpt-4o-2024-05-13"  # exact name before the prefix rule
    assert default.resolve("gpt-4o-2024-08-06") == "gpt-4o"
    assert default.resolve("gpt-4o-mini-2024-07-18") == "gpt-4o-mini"


def test_price_change_applies_from_its_date_only() -> None:
    assert TABLE.price_for("alpha", date(2025, 12, 31)) is None  # before any price: unpriced
    assert TABLE.price_for("alpha", date(2026, 11, 15)).input == Decimal("3.00")  # type: ignore[union-attr]
    assert TABLE.price_for("alpha", date(2026, 11, 16)).input == Decimal("2.00")  # type: ignore[union-attr]
    before = row_cost(day_row(15, "alpha-2026-08-01", 1_000_001, 12_345, 77_777), TABLE)
    after = row_cost(day_row(16, "alpha-2026-08-01", 1_000_001, 12_345, 77_777), TABLE)
    assert before.amount == expected_cost(1_000_001, 12_345, 77_777, ALPHA_OLD)
    assert after.amount == expected_cost(1_000_001, 12_345, 77_777, ALPHA_NEW)
    # hourly rows are priced by their date too; a month row must be priced from its days
    hour = UsageRow(Granularity.HOUR, datetime(2026, 11, 16, 23, tzinfo=UTC), UsageKey("a", "", "alpha", "d"),
                    Counters(prompt_tokens=10, total_tokens=10))
    assert row_cost(hour, TABLE).amount == expected_cost(10, 0, 0, ALPHA_NEW)
    with pytest.raises(ValueError, match="month"):
        row_cost(day_row(1, "alpha", 1, 0, 0, granularity=Granularity.MONTH), TABLE)


def test_decimal_exactness() -> None:
    # cached tokens are charged at the cached price, the rest of the prompt at the input price
    cost = row_cost(day_row(3, "alpha-mini-2026-07-18", 987_654_321, 123_456_789, 3_333_333), TABLE)
    assert cost.amount == expected_cost(987_654_321, 123_456_789, 3_333_333, ALPHA_MINI)
    # by hand: 864,197,532 x 0.15 + 123,456,789 x 0.075 + 3,333,333 x 0.60 = 140,888,888.775 per 1M
    assert cost.amount == Decimal("140.888888775")
    # a million one-token embedding rows add up exactly (binary floats would not)
    one = row_cost(day_row(3, "embed", 1, 0, 0), TABLE)
    assert one.amount == Decimal("0.00000002")
    assert sum_costs([one] * 1_000).amount == Decimal("0.00002")
    assert sum(0.02 / 1_000_000 for _ in range(1_000)) != 0.00002  # what floats would have done
    assert money_text(Decimal("0.00002000")) == "0.00002" and money_text(Decimal("12.5")) == "12.50"
    assert display(Decimal("0.125")) == "0.12" and display(Decimal("0.135")) == "0.14"  # half-even, display only


def test_unpriced_model_keeps_its_tokens_and_is_never_zero_priced_silently() -> None:
    cost = row_cost(day_row(3, "mystery-model", 1_000, 0, 500), TABLE)
    assert cost == Cost(Decimal(0), 1_500, frozenset({"mystery-model"}))
    errors_only = row_cost(day_row(3, "unknown", 0, 0, 0), TABLE)
    assert errors_only.unpriced_tokens == 0 and not errors_only.unpriced_models


def test_cached_above_prompt_is_capped_not_charged_twice() -> None:
    cost = row_cost(day_row(3, "alpha", 100, 500, 0), TABLE)
    assert cost.amount == expected_cost(100, 100, 0, ALPHA_OLD)


@pytest.mark.parametrize(("change", "message"), [
    ({"currency": "dollars"}, "currency"),
    ({"prices": []}, "prices"),
    ({"prices": [{"model": "m", "effectiveFrom": "2026-01-01", "input": "1", "output": "2"}]}, "cachedInput"),
    ({"prices": [{"model": "m", "effectiveFrom": "soon", "input": "1", "cachedInput": "1", "output": "2"}]},
     "effectiveFrom"),
    ({"prices": [{"model": "m", "effectiveFrom": "2026-01-01", "input": "-1", "cachedInput": "1", "output": "2"}]},
     "input"),
    ({"prefixRules": [{"prefix": "x-", "model": "nothing"}]}, "no price"),
])
def test_bad_price_files_name_the_problem(change: dict[str, object], message: str) -> None:
    with pytest.raises(PriceFileError, match=message):
        parse_price_file(json.dumps({**PRICE_FILE, **change}), "bad.json")


def test_json_numbers_are_read_as_exact_decimals() -> None:
    text = json.dumps(PRICE_FILE).replace('"0.075"', "0.075")
    price = parse_price_file(text, "numbers").price_for("alpha-mini", date(2026, 5, 1))
    assert price is not None and price.cached_input == Decimal("0.075")


def test_default_price_file_is_dated_and_covers_the_expected_models() -> None:
    document = json.loads(DEFAULT_PRICES.read_text())
    assert document["currency"] == "USD" and date.fromisoformat(document["asOf"])
    assert "indicative" in document["note"].lower() and "check" in document["note"].lower()
    table = PriceCatalog(None).current()
    on = date(2026, 11, 1)
    for model in ("gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "gpt-4.1", "gpt-4.1-mini-2025-04-14",
                  "gpt-4.1-nano", "o1", "o3-mini", "o4-mini-2025-04-16", "o3", "text-embedding-3-small",
                  "text-embedding-3-large"):
        assert table.price_for(model, on) is not None, model
    # the o3 price cut is an effective-dated change in the shipped file
    assert table.price_for("o3", date(2025, 6, 9)).input > table.price_for("o3", date(2025, 6, 10)).input  # type: ignore[union-attr]
