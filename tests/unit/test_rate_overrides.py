"""Negotiated rates: which family applies, and the contracted price a discount or an explicit rate gives."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from shared.core.rate_overrides import RateOverride, RateOverrideBook, RateOverrideError, make_override

BOOK = RateOverrideBook([
    RateOverride("*", "*", date(2026, 1, 1), Decimal("5")),
    RateOverride("gpt-4o", "*", date(2026, 3, 1), Decimal("10")),
    RateOverride("gpt-4o", "datazone", date(2026, 6, 1), None, {"input": Decimal("2.20")}),
    RateOverride("gpt-4o", "datazone", date(2026, 9, 1), Decimal("20"), {"output": Decimal("8")}),
])


@pytest.mark.parametrize(("model", "deployment_type", "on", "discount"), [
    ("gpt-5", "global", date(2026, 2, 1), Decimal("5")),  # only the catch-all
    ("gpt-4o", "global", date(2026, 2, 1), Decimal("5")),  # the model's own one starts in March
    ("gpt-4o", "global", date(2026, 3, 1), Decimal("10")),  # model + * beats * + *
    ("GPT-4o", "datazone", date(2026, 7, 1), None),  # model + type beats model + *, whatever its date
    ("gpt-4o", "datazone", date(2026, 9, 30), Decimal("20")),  # the family's latest in force
])
def test_the_most_specific_family_in_force_applies(model: str, deployment_type: str, on: date,
                                                   discount: Decimal | None) -> None:
    found = BOOK.find(model, deployment_type, on)
    assert found is not None and found.discount_percent == discount


def test_nothing_before_the_first_override() -> None:
    assert BOOK.find("gpt-4o", "global", date(2025, 12, 31)) is None


def test_contracted_prices() -> None:
    explicit_only = BOOK.find("gpt-4o", "datazone", date(2026, 7, 1))
    assert explicit_only is not None
    assert explicit_only.contracted("input", Decimal("2.75")) == Decimal("2.20")
    assert explicit_only.contracted("output", Decimal("11")) is None  # no rate, no discount: list price stays
    both = BOOK.find("gpt-4o", "datazone", date(2026, 10, 1))
    assert both is not None
    assert both.contracted("output", Decimal("11")) == Decimal("8")  # the explicit rate wins for its kind
    assert both.contracted("input", Decimal("2.75")) == Decimal("2.2")  # 20 % off the others
    assert both.contracted("cached_input", None) is None  # nothing to discount: unpriced stays unpriced


@pytest.mark.parametrize(("args", "message"), [
    (("gpt-4o", "datazone", "2026-01-01", None, {}), "discount percentage or at least one rate"),
    (("gpt-4o", "datazone", "2026-01-01", "120", {}), "between 0 and 100"),
    (("gpt-4o", "zone", "2026-01-01", "5", {}), "deployment type"),
    (("gpt-4o", "*", "2026-13-01", "5", {}), "YYYY-MM-DD"),
    (("gpt-4o", "*", "2026-01-01", None, {"reasoning": "1"}), "token kind"),
    (("gpt-4o", "*", "2026-01-01", "x", {}), "decimal"),
])
def test_malformed_overrides_are_refused_naming_the_field(args: tuple[str, str, str, str | None, dict[str, str]],
                                                          message: str) -> None:
    with pytest.raises(RateOverrideError, match=message):
        make_override(*args)


def test_two_overrides_of_one_family_on_one_day_are_refused() -> None:
    with pytest.raises(RateOverrideError, match="same day"):
        RateOverrideBook([RateOverride("*", "*", date(2026, 1, 1), Decimal("5")),
                          RateOverride("*", "*", date(2026, 1, 1), Decimal("6"))])
