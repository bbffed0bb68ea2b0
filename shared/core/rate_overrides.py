"""Negotiated rates (EA / MCA): what a customer really pays for a meter family, instead of the retail price.

The Retail Prices feed lists retail (pay-as-you-go) prices only; an enterprise agreement discounts
them.  An override names a *meter family* — a model and a deployment type, either of which may be
``*`` — and from a UTC date gives either a discount percentage on every retail price of the family
or explicit prices per token kind (per 1M tokens), or both (an explicit price wins for its kind,
the discount applies to the others).

Which override applies: the most specific family that has one in force (model and type named, then
model with ``*``, then ``*`` with type, then ``*|*``), and within a family the one with the latest
``effective_from`` on or before the day.  A line priced through an override says so
(``cost_basis=override``) and keeps its list price next to the contracted one.

**Provisioned throughput** is its own meter family: Azure's PTU meters name a deployment type and a
region, never a model (``Provisioned Managed Global Unit``), so PTU hours are looked up under the
model name :data:`PTU_FAMILY` (``ptu|global``, ``ptu|*``, then ``*|global`` and ``*|*``).  A
model's token rate (``gpt-4o|global``) therefore never discounts PTU hours, a blanket ``*|*`` one
does.  The explicit rate of kind ``ptu_hour`` is per PTU-hour, the others per 1M tokens.

**Uncatalogued deployments** (priced by model name from the price file) have no known deployment
type: only ``model|*`` and ``*|*`` apply to them, never a type-specific family.
"""

from __future__ import annotations

import decimal
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

ANY = "*"
PTU_FAMILY = "ptu"  # the model name of the provisioned-throughput meter family (PTU meters name no model)
DEPLOYMENT_TYPES = ("global", "datazone", "regional")
PTU_HOUR = "ptu_hour"
# Kinds an explicit rate may name (meters.TokenKind values): token kinds per 1M tokens, PTU_HOUR per PTU-hour.
RATE_KINDS = ("input", "cached_input", "output", "audio_input", "cached_audio_input", "audio_output", "cache_write",
              PTU_HOUR)


def rate_unit(kind: str) -> str:
    """What an explicit rate of ``kind`` is priced per."""
    return "PTU-hour" if kind == PTU_HOUR else "1M tokens"
_EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
_HUNDRED = Decimal(100)


class RateOverrideError(ValueError):
    """An override is malformed; the message names the field."""


@dataclass(frozen=True)
class RateOverride:
    model: str  # a model name as the catalog spells it (lower case), or "*"
    deployment_type: str  # global | datazone | regional | "*"
    effective_from: date  # UTC day
    discount_percent: Decimal | None = None  # 0 < d <= 100, on every retail price of the family
    rates: Mapping[str, Decimal] = field(default_factory=dict)  # kind -> price per rate_unit(kind)
    note: str = ""

    def __post_init__(self) -> None:
        if not self.model or self.model != self.model.strip().lower():
            raise RateOverrideError(f"model must be a lower-case model name or *, got {self.model!r}")
        if self.deployment_type not in (*DEPLOYMENT_TYPES, ANY):
            raise RateOverrideError(f"deployment type must be one of {', '.join(DEPLOYMENT_TYPES)} or *, "
                                    f"got {self.deployment_type!r}")
        if self.discount_percent is None and not self.rates:
            raise RateOverrideError("an override needs a discount percentage or at least one rate")
        if self.discount_percent is not None and not (0 <= self.discount_percent <= _HUNDRED):
            raise RateOverrideError(f"discount must be between 0 and 100 percent, got {self.discount_percent}")
        for kind, rate in self.rates.items():
            if kind not in RATE_KINDS:
                raise RateOverrideError(f"rate for {kind!r}: token kind must be one of {', '.join(RATE_KINDS)}")
            if not rate.is_finite() or rate < 0:
                raise RateOverrideError(f"rate for {kind}: must be a finite number >= 0, got {rate}")

    @property
    def family(self) -> str:
        return f"{self.model}|{self.deployment_type}"

    @property
    def effective_moment(self) -> datetime:
        return datetime(self.effective_from.year, self.effective_from.month, self.effective_from.day, tzinfo=UTC)

    def contracted(self, token_kind: str, list_price: Decimal | None) -> Decimal | None:
        """The negotiated price of ``token_kind`` (per :func:`rate_unit`); ``None`` = this override does
        not price that kind (no explicit rate, and no list price to discount)."""
        explicit = self.rates.get(token_kind)
        if explicit is not None:
            return explicit
        if self.discount_percent is None or list_price is None:
            return None
        with decimal.localcontext(_EXACT):
            return list_price * (_HUNDRED - self.discount_percent) / _HUNDRED


def make_override(model: str, deployment_type: str, effective_from: str, discount: str | None,
                  rates: Mapping[str, str], note: str = "") -> RateOverride:
    """An override from text (command line, API body); malformed input raises :class:`RateOverrideError`."""
    try:
        day = date.fromisoformat(effective_from.strip())
    except ValueError:
        raise RateOverrideError(f"from: expected YYYY-MM-DD, got {effective_from!r}") from None

    def number(name: str, text: str) -> Decimal:
        try:
            value = Decimal(text.strip())
        except decimal.InvalidOperation:
            raise RateOverrideError(f"{name}: expected a decimal number, got {text!r}") from None
        if not value.is_finite():
            raise RateOverrideError(f"{name}: expected a finite number, got {text!r}")
        return value

    return RateOverride(model.strip().lower(), deployment_type.strip().lower(), day,
                        None if discount in (None, "") else number("discount", str(discount)),
                        {kind: number(kind, text) for kind, text in rates.items()}, note)


def override_json(override: RateOverride) -> dict[str, object]:
    return {"model": override.model, "deploymentType": override.deployment_type,
            "effectiveFrom": override.effective_from.isoformat(),
            "discountPercent": None if override.discount_percent is None else format(override.discount_percent, "f"),
            "rates": {kind: format(rate, "f") for kind, rate in sorted(override.rates.items())},
            "note": override.note}


class RateOverrideBook:
    """Every override, by family and date."""

    def __init__(self, overrides: Iterable[RateOverride] = ()) -> None:
        self._by_family: dict[str, list[RateOverride]] = {}
        for override in overrides:
            self._by_family.setdefault(override.family, []).append(override)
        for entries in self._by_family.values():
            entries.sort(key=lambda o: o.effective_from)
            days = [o.effective_from for o in entries]
            if len(set(days)) != len(days):
                raise RateOverrideError(f"family {entries[0].family}: two overrides from the same day")
        self._moments = tuple(sorted({o.effective_moment for e in self._by_family.values() for o in e}))

    def __bool__(self) -> bool:
        return bool(self._by_family)

    def all(self) -> list[RateOverride]:
        return sorted((o for e in self._by_family.values() for o in e), key=lambda o: (o.family, o.effective_from))

    def change_moments(self) -> tuple[datetime, ...]:
        """Every moment an override starts (a period containing one is priced in finer periods)."""
        return self._moments

    def find(self, model: str, deployment_type: str, on: date) -> RateOverride | None:
        """The override in force on ``on`` for the most specific family that has one."""
        name = model.strip().lower()
        for family in (f"{name}|{deployment_type}", f"{name}|{ANY}", f"{ANY}|{deployment_type}", f"{ANY}|{ANY}"):
            entries = self._by_family.get(family)
            if not entries:
                continue
            at = bisect_right([o.effective_from for o in entries], on)
            if at:
                return entries[at - 1]
        return None
