"""Cost as Azure bills it: usage rows priced per meter of the deployment in force, as cost lines.

**Which meter.**  A usage row names a deployment.  The deployment's version in force at the row's
period (:class:`~shared.core.deployments.DeploymentCatalog`) gives the model and version, the SKU
(deployment type and billing mode) and the region; with a token kind that is a
:class:`~shared.core.meters.PriceKey`, priced by the retail meter in force at that moment (the
synced feed's book laid over the shipped default).  A deployment the catalog does not know is priced
as before, by model name from the price file, and every such line says ``catalogued=False``: it is
reported as *uncatalogued*, never silently treated as catalogued.

**Token kinds.**  The counters nest as OpenAI's usage object does (see
:class:`~shared.core.usage.Counters`), so each meter's quantity is a difference:
text input = prompt - cached - cache writes - uncached audio input; cached text = cached - cached
audio; audio input = audio prompt - cached audio; cached audio; cache writes; text output =
completion - audio output; audio output.  Reasoning tokens are inside the output tokens and billed
as output.  A kind with tokens but no price is an *unpriced* line (``list_unit_price=None`` and a
reason), never a zero price.

**A period priced as one block** only when nothing changes inside it: no new deployment version,
no meter price of its model, no negotiated rate, no price-file entry starts (or ends) strictly
inside the period.  Pricing is linear in tokens, so such a period costs exactly its tokens at the
prices in force at its start; any other period is priced from its finer rows (month -> days ->
hours).  An hour is always priced as it starts.

**Priority processing** is a per-request service tier, not an SKU (see :mod:`shared.core.deployments`):
tokens the responses reported as ``service_tier: "priority"`` are priced with ``tier=PRIORITY`` by the
Priority ("pp") retail meter of the deployment's model, type and region.  A usage row carries the tier
its requests were served at (``UsageKey.service_tier``, from the responses' own ``service_tier``), and
the row's tier is what prices it unless a caller names another.  Without such a meter in
force they are unpriced (never the standard price), as they are on an SKU Azure offers no priority
on, or on an uncatalogued deployment (the price file has no Priority prices).

**Provisioned (PTU) deployments** are not charged per token: their hours are priced by
:func:`ptu_cost_lines` (``core.ptu.allocate_month``) and shared by capacity-weighted tokens.

**Negotiated rates** (:mod:`shared.core.rate_overrides`) replace the retail price of the kinds
they price; such a line is ``cost_basis=override`` and keeps its list price beside the contracted one.
"""

from __future__ import annotations

import decimal
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal, cast

from shared.core.cost_lines import PRICING_UNIT_TOKENS, AllocationMethod, CostBasis, CostLine
from shared.core.deployments import BillingMode, Deployment, DeploymentCatalog, ServiceTier, priority_offered
from shared.core.meters import DeploymentType, MeterPrice, Mode, PriceBook, PriceKey, TokenKind, version_code_of
from shared.core.months import next_month
from shared.core.pricing import ZERO, Cost, Price, PriceTable
from shared.core.ptu import Reservation
from shared.core.rate_overrides import ANY, RateOverride, RateOverrideBook
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow

_EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
UNCATALOGUED = "uncatalogued"
HOUR = timedelta(hours=1)

# Meter kinds in output order; the price file (model-name fallback) prices only the first three.
TOKEN_KINDS: tuple[TokenKind, ...] = (TokenKind.INPUT, TokenKind.CACHED_INPUT, TokenKind.OUTPUT,
                                      TokenKind.AUDIO_INPUT, TokenKind.CACHED_AUDIO_INPUT, TokenKind.AUDIO_OUTPUT,
                                      TokenKind.CACHE_WRITE)
_FALLBACK_FIELDS = {TokenKind.INPUT: "input", TokenKind.CACHED_INPUT: "cached_input", TokenKind.OUTPUT: "output"}


def meter_quantities(counters: Counters) -> dict[TokenKind, int]:
    """Tokens per meter kind (only kinds with tokens).  Subsets are capped at what contains them, so
    malformed counters never make a negative quantity or charge a token twice."""
    prompt = max(counters.prompt_tokens, 0)
    cached = min(max(counters.cached_tokens, 0), prompt)
    cached_audio = min(max(counters.cached_audio_tokens, 0), cached)
    audio_prompt = min(max(counters.audio_prompt_tokens, 0), prompt)
    audio_input = max(audio_prompt - cached_audio, 0)
    cache_write = min(max(counters.cache_write_tokens, 0), prompt - cached)
    text_input = max(prompt - cached - cache_write - audio_input, 0)
    completion = max(counters.completion_tokens, 0)
    audio_output = min(max(counters.audio_completion_tokens, 0), completion)
    quantities = {
        TokenKind.INPUT: text_input, TokenKind.CACHED_INPUT: cached - cached_audio,
        TokenKind.OUTPUT: completion - audio_output, TokenKind.AUDIO_INPUT: audio_input,
        TokenKind.CACHED_AUDIO_INPUT: cached_audio, TokenKind.AUDIO_OUTPUT: audio_output,
        TokenKind.CACHE_WRITE: cache_write,
    }
    return {kind: tokens for kind, tokens in quantities.items() if tokens > 0}


def period_end(granularity: Granularity, start: datetime) -> datetime:
    if granularity is Granularity.HOUR:
        return start + HOUR
    if granularity is Granularity.DAY:
        return start + timedelta(days=1)
    return next_month(start)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def meter_change_moments(book: PriceBook | None) -> dict[str, tuple[datetime, ...]]:
    """Per model: the moments its meter prices start or end (a period containing one is split)."""
    found: dict[str, set[datetime]] = {}
    for row in book.rows if book else ():
        moments = found.setdefault(row.key.model, set())
        moments.add(row.effective_start)
        if row.effective_end is not None:
            moments.add(row.effective_end)
    return {model: tuple(sorted(moments)) for model, moments in found.items()}


@dataclass(frozen=True)
class PtuPolicy:
    """How provisioned hours are charged: idle capacity ``unallocated`` (its own line per deployment)
    or ``spread`` over the month's users; reservations per deployment name (lower case)."""

    idle: Literal["unallocated", "spread"] = "unallocated"
    reservations: Mapping[str, tuple[Reservation, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Pricing(PriceTable):
    """Everything a cost is computed from.  It *is* the model-name price table (the fallback for
    uncatalogued deployments, and what callers typed for a :class:`PriceTable` keep reading), plus
    the retail meter book, the deployment catalog, negotiated rates and the PTU policy.  A plain
    price table is a :class:`Pricing` with an empty catalog: every deployment uncatalogued."""

    meters: PriceBook | None = None
    meters_as_of: date | None = None  # the meter book's as-of (last feed sync, else the shipped file)
    catalog: DeploymentCatalog = field(default_factory=DeploymentCatalog, compare=False)
    overrides: RateOverrideBook = field(default_factory=RateOverrideBook, compare=False)
    ptu: PtuPolicy = field(default_factory=PtuPolicy)
    _moments: dict[tuple[str, str], tuple[datetime, ...]] = field(default_factory=dict, init=False, repr=False,
                                                                  compare=False)
    # Per model: every moment one of its meter prices starts or ends (computed from ``meters`` unless given:
    # a catalog that keeps a book for a while computes it once, see :func:`meter_change_moments`).
    meter_moments: Mapping[str, tuple[datetime, ...]] | None = field(default=None, repr=False, compare=False)
    # Results a caller may keep for the life of this pricing (one request): e.g. a month's PTU lines,
    # which a paged report would otherwise recompute for every storage page.
    memo: dict[object, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.meter_moments is None:
            object.__setattr__(self, "meter_moments", meter_change_moments(self.meters))

    @classmethod
    def of(cls, table: PriceTable, **parts: object) -> Pricing:
        if isinstance(table, Pricing) and not parts:
            return table
        return cls(table.currency, table.prices, table.prefix_rules, table.source, table.as_of,
                   **parts)  # type: ignore[arg-type]

    def change_moments(self, deployment: str, model: str) -> tuple[datetime, ...]:
        """Every moment something that prices rows of this deployment and logged model may change."""
        slot = (deployment.strip().lower(), model.strip().lower())
        found = self._moments.get(slot)
        if found is None:
            versions = self.catalog.history(deployment)
            moments = {v.effective_from for v in versions}
            by_model = self.meter_moments or {}
            for version in versions:
                moments.update(by_model.get(version.model.strip().lower(), ()))
            moments.update(self.overrides.change_moments())
            moments.update(_midnight(day) for day in self.change_dates(model))
            found = tuple(sorted(moments))
            self._moments[slot] = found
        return found

    def uniform(self, row: UsageRow) -> bool:
        """Whether ``row`` may be priced as one block (nothing changes strictly inside its period)."""
        if row.granularity is Granularity.HOUR:
            return True
        start = row.period_start
        moments = self.change_moments(row.key.deployment, row.key.model)
        at = bisect_right(moments, start)
        return at == len(moments) or moments[at] >= period_end(row.granularity, start)

    def provisioned_between(self, deployment: str, start: datetime, end: datetime) -> bool:
        return any(v.provisioned for _, _, v in self.catalog.changes_in(deployment, start, end))

    def price_as_of(self, catalogued: bool) -> date | None:
        return self.meters_as_of if catalogued else self.as_of


# -- token lines -----------------------------------------------------------------------------------
def _tokens_quantity(tokens: int) -> Decimal:
    return Decimal(tokens).scaleb(-6)


def _times(price: Decimal | None, quantity: Decimal) -> Decimal | None:
    # The exact context's own method: a product that would round raises, and no context switch per line.
    return None if price is None else _EXACT.multiply(price, quantity)


@dataclass(frozen=True)
class _Meter:
    """The price of one kind for one row: list and contracted price (per 1M), basis, or why unpriced."""

    list_price: Decimal | None
    contracted_price: Decimal | None
    basis: CostBasis
    meter_id: str | None
    reason: str | None


@dataclass(frozen=True)
class _Where:
    """What a row's lines share: the meter family they are priced from."""

    model: str
    model_version: str | None
    deployment_type: str | None
    mode: str | None
    region: str | None
    catalogued: bool
    resource_id: str | None


_Kinds = list[tuple[TokenKind, int, _Meter]]


def row_tier(key: UsageKey) -> ServiceTier:
    """The tier a usage row's requests were served at (``""``: the default tier)."""
    return ServiceTier.PRIORITY if key.service_tier == ServiceTier.PRIORITY else ServiceTier.DEFAULT


def _priced(row: UsageRow, pricing: Pricing, tier: ServiceTier | None) -> tuple[_Where, _Kinds] | None:
    """Each meter kind of a (uniform) row with its price as the period starts; ``None`` when the row
    has no tokens or its deployment is provisioned (its hours are priced by ``ptu_cost_lines``)."""
    return _priced_quantities(row.key, row.period_start, meter_quantities(row.counters), pricing, tier)


def _priced_quantities(key: UsageKey, start: datetime, quantities: Mapping[TokenKind, int], pricing: Pricing,
                       tier: ServiceTier | None) -> tuple[_Where, _Kinds] | None:
    if not quantities:
        return None
    if tier is None:
        tier = row_tier(key)
    version = pricing.catalog.in_force(key.deployment, start)
    if version is not None and version.kind is not None:
        if version.provisioned:
            return None
        return _catalogued(version, quantities, start, pricing, tier)
    if tier is ServiceTier.PRIORITY:
        return _unpriced_priority(key, quantities, version)
    return _fallback(key, quantities, start, pricing, version)


def token_lines(row: UsageRow, pricing: Pricing, tier: ServiceTier | None = None) -> list[CostLine]:
    """The cost lines of a (uniform) row, priced as its period starts; none for a provisioned
    deployment (its hours are priced by :func:`ptu_cost_lines`).  ``tier``: the service tier the
    responses reported for these tokens (priority tokens are priced by the Priority meters); by
    default the row's own (:func:`row_tier`)."""
    priced = _priced(row, pricing, tier)
    if priced is None:
        return []
    where, kinds = priced
    start = row.period_start
    end = period_end(row.granularity, start)
    return [_line(row, kind, tokens, start, end, meter, pricing, where) for kind, tokens, meter in kinds]


def token_cost(row: UsageRow, pricing: Pricing, tier: ServiceTier | None = None) -> Cost:
    """What :func:`cost_of_lines` gives for :func:`token_lines` of the row, without building the lines
    (a report of thousands of rows needs only the sums)."""
    return _cost(row.key, _priced(row, pricing, tier), pricing)


def refined_cost(key: UsageKey, rows: Iterable[UsageRow], pricing: Pricing,
                 tier: ServiceTier | None = None) -> Cost:
    """The cost of uniform ``rows`` of usage key ``key`` (the finer rows of a period), priced once per
    stretch between two change moments instead of once per row.  Exactly the sum of
    :func:`token_cost` of each row: every row of a stretch is priced at the same prices (nothing
    changes between their starts), pricing is linear in each meter quantity, and the quantities are
    summed per row as :func:`meter_quantities` gives them (so a malformed row is capped as alone)."""
    moments = pricing.change_moments(key.deployment, key.model)
    stretches: dict[int, tuple[datetime, dict[TokenKind, int], list[int]]] = {}
    for row in rows:
        slot = bisect_right(moments, row.period_start)
        start, quantities, sums = stretches.get(slot) or (row.period_start, {}, [0] * len(_NESTED))
        c = row.counters
        if _nested(c):  # meter_quantities caps nothing: linear, so the counters are summed
            for at, value in enumerate((c.prompt_tokens, c.cached_tokens, c.cached_audio_tokens,
                                        c.audio_prompt_tokens, c.cache_write_tokens, c.completion_tokens,
                                        c.audio_completion_tokens)):
                sums[at] += value
        else:
            for kind, tokens in meter_quantities(c).items():
                quantities[kind] = quantities.get(kind, 0) + tokens
        stretches[slot] = (min(start, row.period_start), quantities, sums)
    total = Cost()
    for start, quantities, sums in stretches.values():
        for kind, tokens in meter_quantities(Counters(**dict(zip(_NESTED, sums, strict=True)))).items():
            quantities[kind] = quantities.get(kind, 0) + tokens
        total = total + _cost(key, _priced_quantities(key, start, quantities, pricing, tier), pricing)
    return total


_NESTED = ("prompt_tokens", "cached_tokens", "cached_audio_tokens", "audio_prompt_tokens", "cache_write_tokens",
           "completion_tokens", "audio_completion_tokens")


def _nested(c: Counters) -> bool:
    """Whether the counters nest as :class:`Counters` says, so :func:`meter_quantities` caps nothing."""
    return (0 <= c.cached_audio_tokens <= c.cached_tokens and c.cached_audio_tokens <= c.audio_prompt_tokens
            and c.cache_write_tokens >= 0
            and c.cached_tokens + c.cache_write_tokens + c.audio_prompt_tokens - c.cached_audio_tokens
            <= c.prompt_tokens
            and 0 <= c.audio_completion_tokens <= c.completion_tokens)


def _cost(key: UsageKey, priced: tuple[_Where, _Kinds] | None, pricing: Pricing) -> Cost:
    if priced is None:
        return Cost()
    where, kinds = priced
    amount = list_amount = ZERO
    by_kind: dict[str, Decimal] = {}
    by_basis: dict[str, Decimal] = {}
    unpriced_tokens = 0
    unpriced: set[str] = set()
    for kind, tokens, meter in kinds:
        if meter.contracted_price is None:
            unpriced_tokens += tokens
            unpriced.add(f"{key.deployment}: {kind.value} ({meter.reason})")
            continue
        quantity = _tokens_quantity(tokens)
        billed = _EXACT.multiply(meter.contracted_price, quantity)
        listed = _EXACT.multiply(meter.list_price, quantity) if meter.list_price is not None else billed
        amount = _EXACT.add(amount, billed)
        list_amount = _EXACT.add(list_amount, listed)
        by_kind[kind.value] = _EXACT.add(by_kind.get(kind.value, ZERO), billed)
        by_basis[meter.basis.value] = _EXACT.add(by_basis.get(meter.basis.value, ZERO), billed)
    by_type = {where.deployment_type or UNCATALOGUED: amount} if amount or by_kind else {}
    return Cost(amount, unpriced_tokens, frozenset({key.model}) if unpriced else frozenset(), by_kind, by_type,
                by_basis, list_amount, frozenset() if where.catalogued else frozenset({key.deployment}),
                frozenset(unpriced), pricing.price_as_of(where.catalogued))


def _line(row: UsageRow, kind: TokenKind, tokens: int, start: datetime, end: datetime, meter: _Meter,
          pricing: Pricing, where: _Where) -> CostLine:
    quantity = _tokens_quantity(tokens)
    return CostLine(
        subscription_id=row.key.subscription_id, product_id=row.key.product_id, deployment=row.key.deployment,
        model=where.model, model_version=where.model_version, deployment_type=where.deployment_type,
        mode=where.mode, region=where.region, token_kind=kind.value, charge_start=start, charge_end=end,
        consumed_quantity=Decimal(tokens), consumed_unit="Tokens", pricing_quantity=quantity,
        pricing_unit=PRICING_UNIT_TOKENS, list_unit_price=meter.list_price,
        list_cost=_times(meter.list_price, quantity), contracted_unit_price=meter.contracted_price,
        contracted_cost=_times(meter.contracted_price, quantity), cost_basis=meter.basis,
        allocation_method=AllocationMethod.METERED, price_as_of=pricing.price_as_of(where.catalogued),
        currency=pricing.currency, catalogued=where.catalogued, meter_id=meter.meter_id,
        resource_id=where.resource_id, unpriced_reason=meter.reason if meter.contracted_price is None else None,
        apim_service=row.key.apim_service, service_tier=row.key.service_tier)


def _fallback(key: UsageKey, quantities: Mapping[TokenKind, int], start: datetime, pricing: Pricing,
              version: Deployment | None) -> tuple[_Where, _Kinds]:
    slot = ("fallback-price", key.model, start.date())
    if slot not in pricing.memo:
        price = pricing.price_for(key.model, start.date())
        # The deployment type of an uncatalogued deployment is unknown: only the model's any-type family
        # (``model|*``) and ``*|*`` can apply; a type-specific rate is never assumed to hold.
        family = price.model if price is not None else key.model
        pricing.memo[slot] = (price, pricing.overrides.find(family, ANY, start.date()) if pricing.overrides else None)
    price, override = cast(tuple[Price | None, RateOverride | None], pricing.memo[slot])
    not_costed = f"SKU {version.sku!r} is not a known SKU" if version is not None else "deployment not in the catalog"
    kinds: _Kinds = []
    for kind, tokens in quantities.items():
        listed: Decimal | None = getattr(price, _FALLBACK_FIELDS[kind]) if price and kind in _FALLBACK_FIELDS else None
        contracted = override.contracted(kind.value, listed) if override is not None else None
        if contracted is not None:
            meter = _Meter(listed, contracted, CostBasis.OVERRIDE, None, None)
        elif price is None:
            meter = _Meter(None, None, CostBasis.PAYG, None, f"{not_costed}; no price for model {key.model!r}")
        elif listed is not None:
            meter = _Meter(listed, listed, CostBasis.PAYG, None, None)
        else:
            meter = _Meter(None, None, CostBasis.PAYG, None,
                           f"{not_costed}; the price file has no {kind.value} price")
        kinds.append((kind, tokens, meter))
    return _Where(key.model, None, None, None, None, False, None), kinds


def _unpriced_priority(key: UsageKey, quantities: Mapping[TokenKind, int],
                       version: Deployment | None) -> tuple[_Where, _Kinds]:
    """Priority tokens of a deployment the catalog cannot place: the price file has no Priority
    prices, and a standard price would be a guess."""
    why = f"SKU {version.sku!r} is not a known SKU" if version is not None else "deployment not in the catalog"
    reason = f"{why}; priority tokens are priced only by a Priority retail meter"
    return (_Where(key.model, None, None, Mode.PRIORITY.value, None, False, None),
            [(kind, tokens, _Meter(None, None, CostBasis.PAYG, None, reason)) for kind, tokens in quantities.items()])


def meter_key(version: Deployment, kind: TokenKind, tier: ServiceTier = ServiceTier.DEFAULT) -> PriceKey | None:
    """The retail meter of ``kind`` tokens on ``version`` served at ``tier``; ``None`` for an unknown
    SKU, or priority tokens on a deployment Azure offers no priority processing on."""
    sku = version.kind
    if sku is None or (tier is ServiceTier.PRIORITY and not priority_offered(sku)):
        return None
    try:
        code = version_code_of(version.model_version)
    except ValueError:
        code = version.model_version.strip()
    mode = (Mode.BATCH if sku.mode is BillingMode.BATCH else Mode.PRIORITY if tier is ServiceTier.PRIORITY
            else Mode.STANDARD)
    return PriceKey(version.model.strip().lower(), code, DeploymentType(sku.deployment_type.value), mode,
                    version.region.strip().lower(), kind)


def _retail(pricing: Pricing, key: PriceKey, moment: datetime) -> MeterPrice | None:
    if pricing.meters is None:
        return None
    found = pricing.meters.lookup(key, moment)
    if found is None and key.version:
        # Some meters name no version (``GPT 5 Inpt Glbl``): the model's versionless meter prices it.
        found = pricing.meters.lookup(PriceKey(key.model, "", key.deployment_type, key.mode, key.region,
                                               key.token_kind), moment)
    return found


def _catalogued(version: Deployment, quantities: Mapping[TokenKind, int], start: datetime,
                pricing: Pricing, tier: ServiceTier) -> tuple[_Where, _Kinds]:
    # Every row of a version priced at the same moment has the same meters: looked up once per
    # pricing (a month's report prices thousands of rows that start at the same moment).
    slot = ("catalogued", id(version), tier, start)
    found = cast(tuple[_Where, dict[TokenKind, _Meter]] | None, pricing.memo.get(slot))
    if found is None:
        found = pricing.memo[slot] = _catalogued_meters(version, start, pricing, tier)
    where, meters = found
    return where, [(kind, tokens, meters[kind]) for kind, tokens in quantities.items()]


def _catalogued_meters(version: Deployment, start: datetime, pricing: Pricing,
                       tier: ServiceTier) -> tuple[_Where, dict[TokenKind, _Meter]]:
    """The meter of every token kind for ``version`` at ``start`` (kinds without a meter: unpriced)."""
    sku = version.kind
    assert sku is not None
    basis = CostBasis.BATCH if sku.mode is BillingMode.BATCH else CostBasis.PAYG
    override = pricing.overrides.find(version.model, sku.deployment_type.value, start.date())
    meters: dict[TokenKind, _Meter] = {}
    mode = Mode.PRIORITY.value if tier is ServiceTier.PRIORITY else Mode.STANDARD.value
    for kind in TOKEN_KINDS:
        key = meter_key(version, kind, tier)
        if key is None:  # priority tokens where Azure offers no priority processing: never a guessed price
            meters[kind] = _Meter(None, None, basis, None, f"priority processing is not offered on SKU "
                                                           f"{version.sku} (GlobalStandard and DataZoneStandard only)")
            continue
        mode = key.mode.value
        retail = _retail(pricing, key, start)
        list_price = retail.price if retail is not None else None
        contracted = override.contracted(kind.value, list_price) if override is not None else None
        if contracted is not None:
            meter = _Meter(list_price, contracted, CostBasis.OVERRIDE, retail.meter_id if retail else None, None)
        else:
            meter = _Meter(list_price, list_price, basis, retail.meter_id if retail else None,
                           None if retail else f"no retail meter {key.text()} in force")
        meters[kind] = meter
    resource_id = f"{version.account}/deployments/{version.name}" if version.account.startswith("/") else None
    return _Where(version.model, version.model_version or None, sku.deployment_type.value, mode, version.region,
                  True, resource_id), meters


# -- cost of lines ---------------------------------------------------------------------------------
def cost_of_lines(lines: Iterable[CostLine], logged_model: str | None = None) -> Cost:
    """The lines summed, with the split.  ``logged_model``: the model name the usage row logged
    (reported in ``unpriced_models``, as the dashboard and quotas know models by that name)."""
    amount = list_amount = ZERO
    by_kind: dict[str, Decimal] = {}
    by_type: dict[str, Decimal] = {}
    by_basis: dict[str, Decimal] = {}
    unpriced_tokens = 0
    unpriced_models: set[str] = set()
    unpriced_meters: set[str] = set()
    uncatalogued: set[str] = set()
    as_of: date | None = None
    with decimal.localcontext(_EXACT):
        for line in lines:
            if not line.catalogued:
                uncatalogued.add(line.deployment)
            if line.price_as_of is not None:
                as_of = line.price_as_of if as_of is None else min(as_of, line.price_as_of)
            billed = line.billed_cost
            if billed is None:
                if line.consumed_unit == "Tokens":
                    unpriced_tokens += int(line.consumed_quantity)
                unpriced_models.add(logged_model or line.model)
                unpriced_meters.add(f"{line.deployment}: {line.token_kind} ({line.unpriced_reason})")
                continue
            amount += billed
            list_amount += line.list_cost if line.list_cost is not None else billed
            by_kind[line.token_kind] = by_kind.get(line.token_kind, ZERO) + billed
            deployment_type = line.deployment_type or UNCATALOGUED
            by_type[deployment_type] = by_type.get(deployment_type, ZERO) + billed
            by_basis[line.cost_basis.value] = by_basis.get(line.cost_basis.value, ZERO) + billed
    return Cost(amount, unpriced_tokens, frozenset(unpriced_models), by_kind, by_type, by_basis, list_amount,
                frozenset(uncatalogued), frozenset(unpriced_meters), as_of)
