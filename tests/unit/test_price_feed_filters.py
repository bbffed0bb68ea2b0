"""Retail Prices feed filters: quoting, allowed values, and messages free of secrets."""

from __future__ import annotations

import pytest

from shared.adapters.retail_prices import (
    RetailPricesClient,
    describe_url,
    odata_string,
    price_filter,
)


@pytest.mark.parametrize(("region", "currency"), [
    ("eastus2' or productName eq 'x", "USD"), ("East US", "USD"), ("", "USD"), ("eastus2", "usd"),
    ("eastus2", "US"), ("eastus2", "USD'"),
])
def test_filter_values_outside_their_patterns_are_refused(region: str, currency: str) -> None:
    with pytest.raises(ValueError):
        RetailPricesClient().first_page_url(region, currency)


def test_filter_strings_are_quoted_by_doubling_and_products_come_from_the_fixed_list() -> None:
    assert odata_string("O'Brien") == "'O''Brien'"
    assert price_filter(None, ["Azure OpenAI"]) == "(productName eq 'Azure OpenAI')"
    with pytest.raises(ValueError):
        price_filter(None, ["Azure OpenAI' or 1 eq 1 or productName eq '"])
    with pytest.raises(ValueError):
        price_filter(None, [])


def test_urls_in_messages_carry_no_secrets() -> None:
    described = describe_url("https://user:pw@prices.example:8443/api/retail/prices?code=s3cret&$skip=100")
    assert "s3cret" not in described and "pw" not in described and "user" not in described
    assert described.startswith("https://prices.example:8443/api/retail/prices?") and "$skip=100" in described
