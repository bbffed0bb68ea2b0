"""Prices and the cost of usage rows: pure, exact (``decimal.Decimal``), no I/O.

A price table holds, per model, prices per 1M tokens for input, cached input and output, each
with the UTC date from which it applies; a price applies from its ``effective_from`` until the next
one of the same model.  A model name is resolved by its exact (case-insensitive) name first, then by
the *longest* matching prefix rule (``gpt-4o-mini-20`` wins over ``gpt-4o-20``, whatever the file
order).  A model with no price is ``unpriced``: its tokens are reported, never priced at zero.

Cost is computed at read time from token-only usage rows (never stored): a corrected price
re-prices all history on the next report, and the stored rows stay a plain record of what the
gateway logged.  Arithmetic runs in a context that traps ``Inexact``, so nothing is ever rounded
silently; rounding happens only in :func:`display` / :func:`money_text` for people.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date
from decimal import Decimal
from typing import Any

from shared.core.months import next_month
from shared.core.usage import Counters, Granularity, UsageRow

PER_TOKENS = 1_000_000  # prices are per 1M tokens
ZERO = Decimal(0)
_EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])


class PriceFileError(ValueError):
    """A price file or entry is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class Price:
    model: str
    effective_from: date
    input: Decimal  # per 1M prompt tokens that were not served from the cache
    cached_input: Decimal  # per 1M cached prompt tokens
    output: Decimal  # per 1M completion tokens


@dataclass(frozen=True)
class PrefixRule:
    prefix: str
    model: str


@dataclass(frozen=True)
class PriceTable:
    currency: str
    prices: tuple[Price, ...]
    prefix_rules: tuple[PrefixRule, ...] = ()
    source: str = ""
    as_of: date | None = None  # the price file's ``asOf``: shown wherever its prices are
    _by_model: dict[str, tuple[Price, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_model: dict[str, list[Price]] = {}
        for price in self.prices:
            by_model.setdefault(price.model.lower(), []).append(price)
        ordered = {}
        for model, entries in by_model.items():
            entries.sort(key=lambda p: p.effective_from)
            dates = [p.effective_from for p in entries]
            if len(set(dates)) != len(dates):
                raise PriceFileError(f"model {model!r} has two prices with the same effectiveFrom")
            ordered[model] = tuple(entries)
        object.__setattr__(self, "_by_model", ordered)

    def resolve(self, model: str) -> str | None:
        """The priced model name ``model`` maps to: exact name, else the longest matching prefix."""
        name = model.strip().lower()
        if name in self._by_model:
            return name
        matches = [rule for rule in self.prefix_rules if name.startswith(rule.prefix.lower())]
        if not matches:
            return None
        target = max(matches, key=lambda rule: len(rule.prefix)).model.lower()
        return target if target in self._by_model else None

    def price_for(self, model: str, on: date) -> Price | None:
        """The price of ``model`` in force on ``on`` (UTC date), or ``None`` (unpriced)."""
        resolved = self.resolve(model)
        if resolved is None:
            return None
        current = None
        for price in self._by_model[resolved]:
            if price.effective_from <= on:
                current = price
        return current

    def change_dates(self, model: str) -> tuple[date, ...]:
        resolved = self.resolve(model)
        return tuple(p.effective_from for p in self._by_model.get(resolved or "", ()))


def _merged(left: Mapping[str, Decimal], right: Mapping[str, Decimal]) -> Mapping[str, Decimal]:
    if not right:
        return left
    if not left:
        return right
    merged = dict(left)
    for key, amount in right.items():
        merged[key] = merged.get(key, ZERO) + amount
    return merged


def _earliest(left: date | None, right: date | None) -> date | None:
    if left is None or right is None:
        return left or right
    return min(left, right)


@dataclass(frozen=True)
class Cost:
    """Cost of some usage: ``amount`` exact (what is charged); ``unpriced_tokens`` had no price (not in
    ``amount``).  The split says where ``amount`` comes from: by meter kind (``input``, ``cached_input``,
    ``output``, ``audio_input``, ..., ``ptu_hour``), by deployment type (``global``, ``datazone``,
    ``regional``, or ``uncatalogued`` for a deployment priced by model name) and by cost basis
    (``payg``, ``batch``, ``ptu-allocated``, ``override``); each split sums to ``amount``."""

    amount: Decimal = ZERO
    unpriced_tokens: int = 0
    unpriced_models: frozenset[str] = frozenset()
    by_kind: Mapping[str, Decimal] = field(default_factory=dict)
    by_deployment_type: Mapping[str, Decimal] = field(default_factory=dict)
    by_basis: Mapping[str, Decimal] = field(default_factory=dict)
    list_amount: Decimal = ZERO  # the same usage at list (retail) prices: differs from amount under an override
    uncatalogued: frozenset[str] = frozenset()  # deployments priced by model name: not in the catalog
    unpriced_meters: frozenset[str] = frozenset()  # "deployment: token kind (why)" for each unpriced kind
    price_as_of: date | None = None  # the oldest as-of date of the price lists used

    def __add__(self, other: Cost) -> Cost:
        with decimal.localcontext(_EXACT):
            return Cost(self.amount + other.amount, self.unpriced_tokens + other.unpriced_tokens,
                        self.unpriced_models | other.unpriced_models, _merged(self.by_kind, other.by_kind),
                        _merged(self.by_deployment_type, other.by_deployment_type),
                        _merged(self.by_basis, other.by_basis), self.list_amount + other.list_amount,
                        self.uncatalogued | other.uncatalogued, self.unpriced_meters | other.unpriced_meters,
                        _earliest(self.price_as_of, other.price_as_of))


def sum_costs(costs: Iterable[Cost]) -> Cost:
    result = Cost()
    for cost in costs:
        result = result + cost
    return result


def cost_of(counters: Counters, price: Price) -> Decimal:
    """``(prompt - cached) * input + cached * cached_input + completion * output``, per 1M tokens.

    Cached tokens are a subset of prompt tokens; a (malformed) cached count above the prompt
    count is capped at it so no token is charged twice.
    """
    cached = min(max(counters.cached_tokens, 0), counters.prompt_tokens)
    uncached = counters.prompt_tokens - cached
    with decimal.localcontext(_EXACT):
        per_million = uncached * price.input + cached * price.cached_input + counters.completion_tokens * price.output
        return per_million.scaleb(-6)


def row_cost(row: UsageRow, table: PriceTable) -> Cost:
    """Cost of an hour or day row, priced on the UTC date the row's period starts."""
    if row.granularity is Granularity.MONTH:
        raise ValueError("a month row may span a price change; price its day rows instead")
    price = table.price_for(row.key.model, row.period_start.astimezone(UTC).date())
    if price is None:
        tokens = row.counters.total_tokens or row.counters.prompt_tokens + row.counters.completion_tokens
        return Cost(ZERO, tokens, frozenset({row.key.model}) if tokens else frozenset())
    amount = cost_of(row.counters, price)
    return Cost(amount, list_amount=amount)


def month_priced_whole(row: UsageRow, table: PriceTable) -> bool:
    """Whether a month row may be priced as one block: no price of its model changes inside the month.

    Pricing is linear in tokens, so such a month costs exactly its tokens at the one price in force;
    a month with a price change after its first day needs its day rows, each priced on its own date.
    """
    start, end = row.period_start.date(), next_month(row.period_start).date()
    return not any(start < changed < end for changed in table.change_dates(row.key.model))


def whole_month_cost(row: UsageRow, table: PriceTable) -> Cost:
    """A month row priced without its day rows: at the month's single price when
    :func:`month_priced_whole`, else every token unpriced (never a guess across the change)."""
    if not month_priced_whole(row, table):
        tokens = row.counters.total_tokens
        return Cost(unpriced_tokens=tokens, unpriced_models=frozenset({row.key.model}) if tokens else frozenset())
    return row_cost(UsageRow(Granularity.DAY, row.period_start, row.key, row.counters), table)


def money_text(amount: Decimal) -> str:
    """Exact fixed-point text (no exponent, at least 2 decimals): ``"0.0025"``, ``"12.50"``."""
    text = format(amount.normalize() if amount else ZERO, "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def display(amount: Decimal, places: int = 2) -> str:
    """Rounded (half-even) for people; never used in stored or machine-read values."""
    return format(amount.quantize(Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_EVEN), "f")


# -- price files -------------------------------------------------------------------------------
def _decimal(entry: str, name: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise PriceFileError(f"{entry}: {name} must be a decimal number (a string like \"2.50\"), got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise PriceFileError(f"{entry}: {name} must be a decimal number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise PriceFileError(f"{entry}: {name} must be a finite number >= 0, got {value!r}")
    return number


def _date(entry: str, value: Any) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise PriceFileError(f"{entry}: effectiveFrom must be an ISO date (YYYY-MM-DD), got {value!r}") from None


def price_from(entry_name: str, raw: Mapping[str, Any]) -> Price:
    model = raw.get("model")
    if not isinstance(model, str) or not model.strip():
        raise PriceFileError(f"{entry_name}: model must be a non-empty string")
    where = f"{entry_name} ({model})"
    for required in ("effectiveFrom", "input", "cachedInput", "output"):
        if required not in raw:
            raise PriceFileError(f"{where}: {required} is required")
    return Price(model.strip(), _date(where, raw["effectiveFrom"]), _decimal(where, "input", raw["input"]),
                 _decimal(where, "cachedInput", raw["cachedInput"]), _decimal(where, "output", raw["output"]))


def parse_price_file(text: str, source: str) -> PriceTable:
    """A price table from JSON text (numbers are read as exact decimals, never floats)."""
    try:
        document = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise PriceFileError(f"{source}: not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PriceFileError(f"{source}: expected a JSON object")
    currency = document.get("currency")
    if not isinstance(currency, str) or len(currency.strip()) != 3 or not currency.strip().isalpha():
        raise PriceFileError(f"{source}: currency must be a 3-letter ISO code, got {currency!r}")
    entries = document.get("prices")
    if not isinstance(entries, list) or not entries:
        raise PriceFileError(f"{source}: prices must be a non-empty list")
    prices = [price_from(f"{source}: prices[{i}]", e if isinstance(e, dict) else {}) for i, e in enumerate(entries)]
    rules = []
    for i, raw in enumerate(document.get("prefixRules") or []):
        prefix, model = (raw.get("prefix"), raw.get("model")) if isinstance(raw, dict) else (None, None)
        if not isinstance(prefix, str) or not prefix or not isinstance(model, str) or not model:
            raise PriceFileError(f"{source}: prefixRules[{i}] needs a non-empty prefix and model")
        rules.append(PrefixRule(prefix.strip(), model.strip()))
    as_of = document.get("asOf")
    try:
        as_of_date = date.fromisoformat(as_of) if isinstance(as_of, str) and as_of.strip() else None
    except ValueError:
        raise PriceFileError(f"{source}: asOf must be an ISO date (YYYY-MM-DD), got {as_of!r}") from None
    known = {p.model.lower() for p in prices}
    for rule in rules:
        if rule.model.lower() not in known:
            raise PriceFileError(f"{source}: prefix rule {rule.prefix!r} points to {rule.model!r}, which has no price")
    return PriceTable(currency.strip().upper(), tuple(prices), tuple(rules), source, as_of_date)


def with_overrides(table: PriceTable, overrides: Iterable[Price], source: str) -> PriceTable:
    """``table`` plus ``overrides``; an override replaces an entry with the same model and date."""
    extra = list(overrides)
    if not extra:
        return table
    replaced = {(p.model.lower(), p.effective_from) for p in extra}
    kept = [p for p in table.prices if (p.model.lower(), p.effective_from) not in replaced]
    return PriceTable(table.currency, (*kept, *extra), table.prefix_rules, f"{table.source} + {source}", table.as_of)
