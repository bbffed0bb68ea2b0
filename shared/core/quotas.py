"""Quotas per APIM subscription and period (UTC day or month), in tokens and/or cost: pure rules.

A subscription's quota for a period is its own, or else the default quota (subscription ``*``) for
that period — per period, so a subscription with only its own month quota still gets the default
day quota.  Usage against a quota is the larger of the token and cost fractions, as an exact
``Fraction`` so a threshold of exactly 80 % is never missed by a rounding error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from typing import Any

from shared.core.months import next_month
from shared.core.pricing import money_text
from shared.core.usage import Granularity, is_team_subscription
from shared.errors import InvalidRequestError

DEFAULT_SUBSCRIPTION = "*"
MAX_SUBSCRIPTION_ID = 256
MAX_TOKENS = 10**15
MAX_COST = Decimal(10) ** 12


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"

    @property
    def granularity(self) -> Granularity:
        return Granularity(self.value)

    def bounds(self, moment: datetime) -> tuple[datetime, datetime]:
        """``[start, end)`` of the UTC period containing ``moment``."""
        start = self.granularity.period_start(moment)
        if self is Period.DAY:
            return start, start + timedelta(days=1)
        return start, next_month(start)


@dataclass(frozen=True)
class Quota:
    subscription_id: str  # an APIM subscription id, or ``*`` (the default)
    period: Period
    max_tokens: int | None = None
    max_cost: Decimal | None = None  # in the price table's currency

    def fraction(self, tokens: int, cost: Decimal) -> Fraction:
        """Used share of the quota: the larger of tokens/limit and cost/limit."""
        shares = [Fraction(0)]
        if self.max_tokens:
            shares.append(Fraction(tokens, self.max_tokens))
        if self.max_cost:
            shares.append(Fraction(cost) / Fraction(self.max_cost))
        return max(shares)


def check_subscription_id(value: Any, field: str = "subscription") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(field, "must be a non-empty subscription id (or * for the default quota)")
    text = value.strip()
    if len(text) > MAX_SUBSCRIPTION_ID:
        raise InvalidRequestError(field, f"must be at most {MAX_SUBSCRIPTION_ID} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise InvalidRequestError(field, "must not contain control characters")
    return text


def parse_period(value: Any, field: str = "period") -> Period:
    try:
        return Period(str(value).strip().lower())
    except ValueError:
        raise InvalidRequestError(field, f"must be day or month, got {value!r}") from None


def parse_tokens(value: Any, field: str = "tokens") -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidRequestError(field, f"must be a whole number of tokens, got {value!r}")
    try:
        number = int(str(value).strip().replace("_", ""))
    except ValueError:
        raise InvalidRequestError(field, f"must be a whole number of tokens, got {value!r}") from None
    if not 0 < number <= MAX_TOKENS:
        raise InvalidRequestError(field, f"must be between 1 and {MAX_TOKENS}, got {number}")
    return number


def parse_cost(value: Any, field: str = "cost") -> Decimal | None:
    """A positive decimal; given as a string (``"250.00"``) or an integer, never a binary float."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise InvalidRequestError(field, f"must be a decimal amount as a string, like \"250.00\", got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidRequestError(field, f"must be a decimal amount, like \"250.00\", got {value!r}") from None
    if not number.is_finite() or number <= 0 or number > MAX_COST:
        raise InvalidRequestError(field, f"must be greater than 0 and at most {MAX_COST}, got {value!r}")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -6:
        raise InvalidRequestError(field, "must have at most 6 decimal places")
    return number


def make_quota(subscription_id: Any, period: Any, tokens: Any = None, cost: Any = None) -> Quota:
    """A validated quota; every problem is an ``InvalidRequestError`` naming the field."""
    quota = Quota(check_subscription_id(subscription_id), parse_period(period), parse_tokens(tokens),
                  parse_cost(cost))
    if quota.max_tokens is None and quota.max_cost is None:
        raise InvalidRequestError("tokens", "give tokens and/or cost: a quota needs at least one limit")
    return quota


def quota_from_body(subscription_id: str, body: Mapping[str, Any]) -> Quota:
    """A quota from an API body ``{"period": "month", "tokens": 5000000, "cost": "250.00"}``."""
    unknown = sorted(set(body) - {"period", "tokens", "cost"})
    if unknown:
        raise InvalidRequestError(unknown[0], "unknown field; expected period, tokens and/or cost")
    if "period" not in body:
        raise InvalidRequestError("period", "is required (day or month)")
    return make_quota(subscription_id, body["period"], body.get("tokens"), body.get("cost"))


class QuotaBook:
    """Effective quotas: own quota per (subscription, period), else the default ``*`` one."""

    def __init__(self, quotas: Iterable[Quota]) -> None:
        self._quotas = {(q.subscription_id, q.period): q for q in quotas}

    def __bool__(self) -> bool:
        return bool(self._quotas)

    def effective(self, subscription_id: str, period: Period) -> Quota | None:
        own = self._quotas.get((subscription_id, period))
        if own is not None:
            return own
        if not is_team_subscription(subscription_id):
            return None  # no subscription / synthetic probe traffic: only an explicit quota applies
        return self._quotas.get((DEFAULT_SUBSCRIPTION, period))


def quota_json(quota: Quota) -> dict[str, object]:
    return {"subscriptionId": quota.subscription_id, "period": quota.period.value, "tokens": quota.max_tokens,
            "cost": None if quota.max_cost is None else money_text(quota.max_cost)}
