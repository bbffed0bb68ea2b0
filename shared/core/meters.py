"""Azure's own price meters for Azure OpenAI, read from the Retail Prices feed: pure, exact, no I/O.

Azure bills per *meter*: a model and version, a deployment type (Global, Data Zone, Regional), a
mode (Standard, Batch, Priority, or provisioned throughput), a region and a token kind.  A
:class:`PriceKey` names exactly that, so a cost computed from it can match the bill line by line.

Meter names are parsed by *components*: the name is split on spaces and hyphens and each part is
looked up in a small vocabulary (``Inp``/``Inpt``/``Input``, ``glbl``/``Gl``/``global``, ...),
because Azure spells the same thing many ways and renames meters over time.  Anything outside the
vocabulary makes the meter a :class:`MeterParseFailure` that names the part: a meter is reported,
never guessed.  Likewise a model version is kept as the meter's own ``MMDD`` code (``0806``) in the
key; the full version (``2024-08-06``) is added only from :data:`KNOWN_VERSIONS`, since the year
is not in the meter name.

Prices are normalised to one unit per kind: per 1,000,000 tokens for token meters (the feed says
``1K`` or ``1M``), per PTU-hour for provisioned throughput, and per PTU for the whole term for
reservations (the feed labels those ``1/Hour`` too; treating the price as per term is an
inference from the amounts: 260 a month, 2652 a year).

The feed keeps no history (a superseded price disappears), so a :class:`PriceBook` keeps its own
effective-dated rows: merging a new feed adds a row only when a price changed, never deletes one,
and merging the same feed twice gives the same book.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any

from shared.core.moments import iso

# Selected by productName: serviceName changed from 'Cognitive Services' to 'Foundry Models'.
OPENAI_PRODUCTS = (
    "Azure OpenAI",
    "Azure OpenAI GPT5",
    "Azure OpenAI Reasoning",
    "Azure OpenAI Media",
    "Azure OpenAI Embedding",
    "Azure OpenAI OSS Models",
    "Azure AI Foundry Provisioned Throughput Reservation",
)
RESERVATION_PRODUCT = "Azure AI Foundry Provisioned Throughput Reservation"
GPT5_PRODUCT = "Azure OpenAI GPT5"
RESERVATION_TERMS = ("1 Month", "1 Year")
DEFAULT_METERS = Path(__file__).resolve().parent.parent / "pricing" / "meters.default.json"

_REGION = re.compile(r"^[a-z0-9]+$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_VERSION_CODE = re.compile(r"^(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])$")  # MMDD
_BARE_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_SEPARATORS = re.compile(r"[\s\-]+")


class DeploymentType(StrEnum):
    GLOBAL = "global"
    DATAZONE = "datazone"
    REGIONAL = "regional"


class Mode(StrEnum):
    STANDARD = "standard"
    BATCH = "batch"
    PRIORITY = "priority"
    PROVISIONED = "provisioned"


class TokenKind(StrEnum):
    INPUT = "input"
    CACHED_INPUT = "cached_input"
    OUTPUT = "output"
    AUDIO_INPUT = "audio_input"
    CACHED_AUDIO_INPUT = "cached_audio_input"
    AUDIO_OUTPUT = "audio_output"
    CACHE_WRITE = "cache_write"
    PTU_HOUR = "ptu_hour"
    PTU_RESERVATION = "ptu_reservation"


class ContextTier(StrEnum):
    SHORT = "short"
    LONG = "long"


class PriceUnit(StrEnum):
    PER_MILLION_TOKENS = "1M tokens"
    PER_PTU_HOUR = "PTU-hour"
    PER_PTU_TERM = "PTU-term"  # the whole reservation term (PriceKey.term)


# Versions whose year is known (Azure OpenAI model versions); a code not listed stays a bare MMDD.
KNOWN_VERSIONS: Mapping[tuple[str, str], str] = {
    ("gpt-4o", "0513"): "2024-05-13",
    ("gpt-4o", "0806"): "2024-08-06",
    ("gpt-4o", "1120"): "2024-11-20",
    ("gpt-4o-mini", "0718"): "2024-07-18",
    ("gpt-4o-realtime", "1217"): "2024-12-17",
    ("gpt-4.1", "0414"): "2025-04-14",
    ("gpt-4.1-mini", "0414"): "2025-04-14",
    ("gpt-4.1-nano", "0414"): "2025-04-14",
    ("o1", "1217"): "2024-12-17",
    ("o3", "0416"): "2025-04-16",
    ("o3-mini", "0131"): "2025-01-31",
    ("o4-mini", "0416"): "2025-04-16",
}


def version_code_of(model_version: str) -> str:
    """The meter code of a model version: ``2024-08-06`` -> ``0806`` (what a key's ``version`` holds)."""
    parts = model_version.strip().split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or not _VERSION_CODE.match(parts[1] + parts[2]):
        raise ValueError(f"expected a model version YYYY-MM-DD, got {model_version!r}")
    return parts[1] + parts[2]


@dataclass(frozen=True)
class PriceKey:
    """One billed meter.  ``model``/``version`` are empty for provisioned rows (PTUs are billed by
    deployment type and region, not by model); ``version`` is the meter's MMDD code or empty when the
    meter names none; ``term`` is set only for reservations."""

    model: str
    version: str
    deployment_type: DeploymentType
    mode: Mode
    region: str
    token_kind: TokenKind
    context_tier: ContextTier | None = None
    term: str | None = None

    def text(self) -> str:
        """A stable, sortable text form: ``gpt-4o|0806|global|standard|eastus2|input||``."""
        return "|".join((self.model, self.version, self.deployment_type.value, self.mode.value, self.region,
                         self.token_kind.value, self.context_tier.value if self.context_tier else "",
                         self.term or ""))

    @classmethod
    def from_text(cls, text: str) -> PriceKey:
        parts = text.split("|")
        if len(parts) != 8:
            raise ValueError(f"not a price key: {text!r}")
        model, version, deployment, mode, region, kind, tier, term = parts
        return cls(model, version, DeploymentType(deployment), Mode(mode), region, TokenKind(kind),
                   ContextTier(tier) if tier else None, term or None)


@dataclass(frozen=True)
class MeterPrice:
    """One effective-dated meter price.  ``price`` is in ``price_unit``; ``retail_price`` and
    ``unit_of_measure`` are the feed's own values, kept so every number can be traced to its row."""

    key: PriceKey
    canonical_version: str | None  # 2024-08-06 when KNOWN_VERSIONS has it, else None (see key.version)
    meter_id: str
    meter_name: str
    sku_name: str
    product_name: str
    currency: str
    price: Decimal
    price_unit: PriceUnit
    retail_price: Decimal
    unit_of_measure: str
    effective_start: datetime
    effective_end: datetime | None = None

    @property
    def version(self) -> str:
        """The full version when known, else the meter's raw code (never a guessed year)."""
        return self.canonical_version or self.key.version


@dataclass(frozen=True)
class MeterParseFailure:
    meter_id: str
    meter_name: str
    reason: str


class MeterFileError(ValueError):
    """A meter price file is malformed; the message names the entry and the field."""


# -- meter names -------------------------------------------------------------------------------
_DEPLOYMENT_WORDS = {
    "glbl": DeploymentType.GLOBAL, "global": DeploymentType.GLOBAL, "gl": DeploymentType.GLOBAL,
    "dzone": DeploymentType.DATAZONE, "dz": DeploymentType.DATAZONE, "dzn": DeploymentType.DATAZONE,
    "regnl": DeploymentType.REGIONAL, "rgnl": DeploymentType.REGIONAL, "regional": DeploymentType.REGIONAL,
    "rg": DeploymentType.REGIONAL,
}
_DIRECTION_WORDS = {
    "inp": "input", "input": "input", "inpt": "input",
    "outp": "output", "output": "output", "outpt": "output", "opt": "output",
}
_CACHED_WORDS = frozenset({"cached", "cchd", "cd"})
_MODE_WORDS = {"batch": Mode.BATCH, "pp": Mode.PRIORITY}
_TIER_WORDS = {"shortco": ContextTier.SHORT, "longco": ContextTier.LONG}
_IGNORED_WORDS = frozenset({"rsng"})  # reasoning: billed as output tokens, no separate meter part
_VOCABULARY = (set(_DEPLOYMENT_WORDS) | set(_DIRECTION_WORDS) | _CACHED_WORDS | set(_MODE_WORDS)
               | set(_TIER_WORDS) | _IGNORED_WORDS | {"rt", "aud", "txt", "data", "wr"})


class _Unparsed(Exception):
    pass


@dataclass
class _Components:
    model: list[str] = field(default_factory=list)
    version: str | None = None
    deployment: DeploymentType | None = None
    mode: Mode | None = None
    tier: ContextTier | None = None
    direction: str | None = None
    cached: bool = False
    cache_write: bool = False
    audio: bool = False
    text: bool = False
    realtime: bool = False

    def set_once(self, name: str, value: object, word: str) -> None:
        if getattr(self, name) not in (None, False):
            raise _Unparsed(f"two {name.replace('_', ' ')} parts (second: {word!r})")
        setattr(self, name, value)


def _tokens(name: str) -> list[str]:
    return [t for t in _SEPARATORS.split(name.strip().lower()) if t]


def _token_components(words: list[str]) -> _Components:
    found = _Components()
    i = 0
    while i < len(words):
        word, following = words[i], words[i + 1] if i + 1 < len(words) else ""
        if word == "data" and following == "zone":
            found.set_once("deployment", DeploymentType.DATAZONE, "data zone")
            i += 2
            continue
        if word == "cd" and following == "wr":
            found.set_once("cache_write", True, "cd wr")
            i += 2
            continue
        if word in _DEPLOYMENT_WORDS:
            found.set_once("deployment", _DEPLOYMENT_WORDS[word], word)
        elif word in _DIRECTION_WORDS:
            found.set_once("direction", _DIRECTION_WORDS[word], word)
        elif word in _CACHED_WORDS:
            found.set_once("cached", True, word)
        elif word in _MODE_WORDS:
            found.set_once("mode", _MODE_WORDS[word], word)
        elif word in _TIER_WORDS:
            found.set_once("tier", _TIER_WORDS[word], word)
        elif word == "aud":
            found.set_once("audio", True, word)
        elif word == "txt":
            found.set_once("text", True, word)
        elif word == "rt":
            found.set_once("realtime", True, word)
        elif word in _IGNORED_WORDS:
            pass
        elif _VERSION_CODE.match(word):
            found.set_once("version", word, word)
        elif word in _VOCABULARY:
            raise _Unparsed(f"part {word!r} out of place")
        elif _leading_run(words, i):
            found.model.append(word)
        else:
            raise _Unparsed(f"unknown part {word!r}")
        i += 1
    return found


def _leading_run(words: list[str], i: int) -> bool:
    """A model name is the leading run of words before any vocabulary word or version code."""
    return all(w not in _VOCABULARY and not _VERSION_CODE.match(w) for w in words[:i])


def _token_kind(found: _Components) -> TokenKind:
    if found.audio and found.text:
        raise _Unparsed("both audio and text parts")
    if found.cache_write:
        if found.cached or found.direction == "output" or found.audio:
            raise _Unparsed("a cache-write meter with a cached, output or audio part")
        return TokenKind.CACHE_WRITE
    if found.direction is None:
        raise _Unparsed("no token kind (input or output)")
    if found.direction == "output":
        if found.cached:
            raise _Unparsed("a cached output meter")
        return TokenKind.AUDIO_OUTPUT if found.audio else TokenKind.OUTPUT
    if found.cached:
        return TokenKind.CACHED_AUDIO_INPUT if found.audio else TokenKind.CACHED_INPUT
    return TokenKind.AUDIO_INPUT if found.audio else TokenKind.INPUT


def _model_name(found: _Components, product: str) -> str:
    if not found.model:
        raise _Unparsed("no model name")
    words = list(found.model)
    if _BARE_NUMBER.match(words[0]):
        # "5.4 Inpt Glbl": GPT-5 family meters may drop the "GPT"; only that product may.
        if product != GPT5_PRODUCT:
            raise _Unparsed(f"model name starts with a bare number {words[0]!r}")
        words.insert(0, "gpt")
    if found.realtime:
        words.append("realtime")
    return "-".join(words)


def _strip_token_suffix(words: list[str], unit: str) -> list[str]:
    if not words or words[-1] != "tokens":
        raise _Unparsed("a token meter name must end with 'Tokens'")
    words = words[:-1]
    if words and words[-1] in ("1m", "1k"):
        if words[-1] != unit.lower():
            raise _Unparsed(f"name says {words[-1].upper()} tokens but the unit is {unit!r}")
        words = words[:-1]
    return words


# -- feed items --------------------------------------------------------------------------------
def is_openai_meter(item: Mapping[str, Any]) -> bool:
    """Whether a feed item is an Azure OpenAI meter this module prices (by productName)."""
    return item.get("productName") in OPENAI_PRODUCTS and item.get("type") in ("Consumption", "Reservation")


def _text(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _Unparsed(f"{name} is missing or not text")
    return value.strip()


def _amount(item: Mapping[str, Any], name: str) -> Decimal:
    value = item.get(name)
    # Floats are refused: the feed's JSON must be read with parse_float=Decimal to stay exact.
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise _Unparsed(f"{name} is not an exact number: {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _Unparsed(f"{name} is not a number: {value!r}") from None
    if not number.is_finite() or number < 0:
        raise _Unparsed(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def parse_moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _moment(item: Mapping[str, Any], name: str, required: bool) -> datetime | None:
    value = item.get(name)
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str):
        raise _Unparsed(f"{name} is missing or not text")
    try:
        return parse_moment(value)
    except ValueError:
        raise _Unparsed(f"{name} is not an ISO datetime: {value!r}") from None


def parse_meter(item: Mapping[str, Any]) -> MeterPrice | MeterParseFailure:
    """One Retail Prices item as a :class:`MeterPrice`, or the reason it is not one."""
    meter_id = item.get("meterId") if isinstance(item.get("meterId"), str) else ""
    meter_name = item.get("meterName") if isinstance(item.get("meterName"), str) else ""
    try:
        return _parse(item)
    except _Unparsed as exc:
        return MeterParseFailure(str(meter_id), str(meter_name), str(exc))


def _plain(amount: Decimal) -> Decimal:
    """The same amount without trailing zeros or an exponent: 0.0025 x 1000 -> 2.5, 0.01 x 1000 -> 10."""
    return Decimal(format(amount.normalize(), "f"))


def _parse(item: Mapping[str, Any]) -> MeterPrice:
    meter_id, meter_name = _text(item, "meterId"), _text(item, "meterName")
    product, unit = _text(item, "productName"), _text(item, "unitOfMeasure")
    if product not in OPENAI_PRODUCTS:
        raise _Unparsed(f"productName {product!r} is not an Azure OpenAI product")
    region = _text(item, "armRegionName")
    if not _REGION.match(region):
        raise _Unparsed(f"armRegionName {region!r} is not a region name")
    currency = _text(item, "currencyCode")
    if not _CURRENCY.match(currency):
        raise _Unparsed(f"currencyCode {currency!r} is not a 3-letter code")
    if "tierMinimumUnits" in item and _amount(item, "tierMinimumUnits") > 0:
        raise _Unparsed("tiered price (tierMinimumUnits > 0)")  # token meters are flat; a tier is not guessed
    retail_price = _amount(item, "retailPrice")
    start = _moment(item, "effectiveStartDate", required=True)
    assert start is not None
    end = _moment(item, "effectiveEndDate", required=False)
    words = _tokens(meter_name)
    common: dict[str, Any] = {
        "meter_id": meter_id, "meter_name": meter_name, "sku_name": str(item.get("skuName") or ""),
        "product_name": product, "currency": currency, "retail_price": retail_price, "unit_of_measure": unit,
        "effective_start": start, "effective_end": end,
    }
    if words[:1] == ["provisioned"]:
        return _provisioned(item, words, region, unit, retail_price, common)
    if item.get("type") != "Consumption":
        raise _Unparsed(f"type {item.get('type')!r} for a token meter")
    multiplier = {"1K": 1000, "1M": 1}.get(unit)
    if multiplier is None:
        raise _Unparsed(f"unitOfMeasure {unit!r} is not a token unit (1K or 1M)")
    found = _token_components(_strip_token_suffix(words, unit))
    if found.deployment is None:
        raise _Unparsed("no deployment type (global, data zone or regional)")
    model = _model_name(found, product)
    version = found.version or ""
    key = PriceKey(model, version, found.deployment, found.mode or Mode.STANDARD, region, _token_kind(found),
                   found.tier)
    return MeterPrice(key=key, canonical_version=KNOWN_VERSIONS.get((model, version)),
                      price=_plain(retail_price * multiplier), price_unit=PriceUnit.PER_MILLION_TOKENS, **common)


_PTU_DEPLOYMENTS = {("global",): DeploymentType.GLOBAL, ("data", "zone"): DeploymentType.DATAZONE,
                    ("regional",): DeploymentType.REGIONAL}


def _provisioned(item: Mapping[str, Any], words: list[str], region: str, unit: str, price: Decimal,
                 common: dict[str, Any]) -> MeterPrice:
    # "Provisioned Managed Global|Data Zone|Regional Unit"
    deployment = _PTU_DEPLOYMENTS.get(tuple(words[2:-1]))
    if words[:2] != ["provisioned", "managed"] or words[-1] != "unit" or deployment is None:
        raise _Unparsed("provisioned meter name is not 'Provisioned Managed <Global|Data Zone|Regional> Unit'")
    if unit != "1/Hour":
        raise _Unparsed(f"unitOfMeasure {unit!r} for a provisioned meter (expected 1/Hour)")
    kind, term, price_unit = TokenKind.PTU_HOUR, None, PriceUnit.PER_PTU_HOUR
    if item.get("type") == "Reservation" or common["product_name"] == RESERVATION_PRODUCT:
        if item.get("type") != "Reservation" or common["product_name"] != RESERVATION_PRODUCT:
            raise _Unparsed("reservation type and product do not agree")
        term = item.get("reservationTerm")
        if term not in RESERVATION_TERMS:
            raise _Unparsed(f"reservationTerm {term!r} is not one of {', '.join(RESERVATION_TERMS)}")
        kind, price_unit = TokenKind.PTU_RESERVATION, PriceUnit.PER_PTU_TERM
    elif item.get("type") != "Consumption":
        raise _Unparsed(f"type {item.get('type')!r} for a provisioned meter")
    key = PriceKey("", "", deployment, Mode.PROVISIONED, region, kind, None, term)
    return MeterPrice(key=key, canonical_version=None, price=_plain(price), price_unit=price_unit, **common)


@dataclass(frozen=True)
class ParsedFeed:
    prices: tuple[MeterPrice, ...]
    failures: tuple[MeterParseFailure, ...]
    skipped: int  # items that are not Azure OpenAI meters (other products, dev/test prices)


def parse_feed(items: Iterable[Mapping[str, Any]]) -> ParsedFeed:
    prices: list[MeterPrice] = []
    failures: list[MeterParseFailure] = []
    skipped = 0
    for item in items:
        if not isinstance(item, Mapping) or not is_openai_meter(item):
            skipped += 1
            continue
        parsed = parse_meter(item)
        if isinstance(parsed, MeterPrice):
            prices.append(parsed)
        else:
            failures.append(parsed)
    return ParsedFeed(tuple(prices), tuple(failures), skipped)


# -- the book ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriceConflict:
    """The feed restated a price for a start date the book already holds with another price; the
    book keeps its row (history is never rewritten by a feed) and the conflict is reported."""

    kept: MeterPrice
    offered: MeterPrice


@dataclass(frozen=True)
class MergeResult:
    book: PriceBook
    added: tuple[MeterPrice, ...]
    unchanged: int
    conflicts: tuple[PriceConflict, ...]


def _order(row: MeterPrice) -> tuple[str, datetime]:
    return row.key.text(), row.effective_start


@dataclass(frozen=True)
class PriceBook:
    """Effective-dated meter prices in one currency: the row of a key in force at a moment is the
    one with the latest ``effective_start`` at or before it (and not past its ``effective_end``)."""

    currency: str
    rows: tuple[MeterPrice, ...] = ()
    _by_key: dict[PriceKey, tuple[MeterPrice, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _CURRENCY.match(self.currency):
            raise ValueError(f"currency must be a 3-letter code, got {self.currency!r}")
        ordered = tuple(sorted(self.rows, key=_order))
        by_key: dict[PriceKey, list[MeterPrice]] = {}
        for row in ordered:
            if row.currency != self.currency:
                raise ValueError(f"meter {row.meter_id} is priced in {row.currency}, the book in {self.currency}")
            same_key = by_key.setdefault(row.key, [])
            if same_key and same_key[-1].effective_start == row.effective_start:
                raise ValueError(f"two prices for {row.key.text()} from {row.effective_start.isoformat()}")
            same_key.append(row)
        object.__setattr__(self, "rows", ordered)
        object.__setattr__(self, "_by_key", {key: tuple(rows) for key, rows in by_key.items()})

    def keys(self) -> tuple[PriceKey, ...]:
        return tuple(self._by_key)

    def history(self, key: PriceKey) -> tuple[MeterPrice, ...]:
        return self._by_key.get(key, ())

    def lookup(self, key: PriceKey, moment: datetime) -> MeterPrice | None:
        """The price of ``key`` in force at ``moment`` (aware), or ``None``: unpriced, never zero."""
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        current = None
        for row in self._by_key.get(key, ()):
            if row.effective_start > moment:
                break
            current = row
        if current is not None and current.effective_end is not None and current.effective_end <= moment:
            return None
        return current

    def merge(self, fresh: Iterable[MeterPrice]) -> MergeResult:
        """This book plus a new sync.  A fresh row is *unchanged* when the book already has its key's
        price in force at its start (same amount); otherwise it is added as a new effective row.
        Nothing is ever removed, so a price the feed dropped stays in force for its dates."""
        by_key = {key: list(rows) for key, rows in self._by_key.items()}
        added: list[MeterPrice] = []
        conflicts: list[PriceConflict] = []
        unchanged = 0
        for row in sorted(fresh, key=_order):
            if row.currency != self.currency:
                raise ValueError(f"meter {row.meter_id} is priced in {row.currency}, the book in {self.currency}")
            history = by_key.setdefault(row.key, [])
            same_start = next((r for r in history if r.effective_start == row.effective_start), None)
            if same_start is not None:
                if same_start.price == row.price:
                    unchanged += 1
                else:
                    conflicts.append(PriceConflict(same_start, row))
                continue
            earlier = [r for r in history if r.effective_start < row.effective_start]
            in_force = earlier[-1] if earlier else None
            if (in_force is not None and in_force.price == row.price
                    and (in_force.effective_end is None or in_force.effective_end > row.effective_start)):
                unchanged += 1
                continue
            history.append(row)
            history.sort(key=lambda r: r.effective_start)
            added.append(row)
        if not added:
            return MergeResult(self, (), unchanged, tuple(conflicts))
        book = PriceBook(self.currency, (*self.rows, *added))
        return MergeResult(book, tuple(added), unchanged, tuple(conflicts))


@dataclass(frozen=True)
class StoredBook:
    """A book as a store holds it: ``version`` is opaque (an ETag) and lets a commit check that the
    book it replaces is still current; ``None`` means nothing was stored yet."""

    book: PriceBook
    version: str | None
    generation: str | None = None  # the stored generation this book was read from
    as_of: datetime | None = None  # when that generation was synced


# -- meter price files (the shipped default and the stored book share this shape) --------------
def meter_price_record(row: MeterPrice) -> dict[str, str | None]:
    """A flat record of text values (exact decimals as strings), for JSON files and table entities."""
    key = row.key
    return {
        "model": key.model, "version": key.version, "deploymentType": key.deployment_type.value,
        "mode": key.mode.value, "region": key.region, "tokenKind": key.token_kind.value,
        "contextTier": key.context_tier.value if key.context_tier else None, "term": key.term,
        "canonicalVersion": row.canonical_version, "meterId": row.meter_id, "meterName": row.meter_name,
        "skuName": row.sku_name, "productName": row.product_name, "currency": row.currency,
        "price": _exact(row.price), "priceUnit": row.price_unit.value, "retailPrice": _exact(row.retail_price),
        "unitOfMeasure": row.unit_of_measure, "effectiveStart": iso(row.effective_start),
        "effectiveEnd": iso(row.effective_end) if row.effective_end else None,
    }


def _exact(amount: Decimal) -> str:
    return format(amount, "f")  # fixed point, never an exponent ("10", not "1E+1")



def meter_price_from_record(where: str, record: Mapping[str, Any]) -> MeterPrice:
    def optional(name: str) -> str | None:
        value = record.get(name)
        if value in (None, ""):
            return None
        if not isinstance(value, str):
            raise MeterFileError(f"{where}: {name} must be text, got {value!r}")
        return value

    def required(name: str) -> str:
        value = optional(name)
        if value is None:
            raise MeterFileError(f"{where}: {name} is required")
        return value

    def number(name: str) -> Decimal:
        try:
            value = Decimal(required(name))
        except InvalidOperation:
            raise MeterFileError(f"{where}: {name} must be a decimal number") from None
        if not value.is_finite() or value < 0:
            raise MeterFileError(f"{where}: {name} must be a finite number >= 0")
        return value

    def moment(text: str | None, name: str) -> datetime | None:
        try:
            return None if text is None else parse_moment(text)
        except ValueError:
            raise MeterFileError(f"{where}: {name} must be an ISO datetime, got {text!r}") from None

    tier = optional("contextTier")
    try:
        key = PriceKey(optional("model") or "", optional("version") or "", DeploymentType(required("deploymentType")),
                       Mode(required("mode")), required("region"), TokenKind(required("tokenKind")),
                       ContextTier(tier) if tier else None, optional("term"))
        price_unit = PriceUnit(required("priceUnit"))
    except ValueError as exc:
        raise MeterFileError(f"{where}: {exc}") from None
    start = moment(required("effectiveStart"), "effectiveStart")
    assert start is not None
    return MeterPrice(key, optional("canonicalVersion"), required("meterId"), required("meterName"),
                      optional("skuName") or "", required("productName"), required("currency"), number("price"),
                      price_unit, number("retailPrice"), required("unitOfMeasure"), start,
                      moment(optional("effectiveEnd"), "effectiveEnd"))


@dataclass(frozen=True)
class MeterFile:
    book: PriceBook
    as_of: str
    source: str


def parse_meter_file(text: str, source: str) -> MeterFile:
    """A price book from meter-file JSON (``{"asOf","currency","meters":[record...]}``)."""
    try:
        document = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise MeterFileError(f"{source}: not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MeterFileError(f"{source}: expected a JSON object")
    currency, as_of, meters = document.get("currency"), document.get("asOf"), document.get("meters")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise MeterFileError(f"{source}: currency must be a 3-letter code, got {currency!r}")
    if not isinstance(as_of, str):
        raise MeterFileError(f"{source}: asOf must be a date")
    if not isinstance(meters, list):
        raise MeterFileError(f"{source}: meters must be a list")
    rows = [meter_price_from_record(f"{source}: meters[{i}]", record if isinstance(record, dict) else {})
            for i, record in enumerate(meters)]
    try:
        book = PriceBook(currency, tuple(rows))
    except ValueError as exc:
        raise MeterFileError(f"{source}: {exc}") from None
    return MeterFile(book, as_of, source)


def meter_file_text(book: PriceBook, as_of: str, note: str) -> str:
    """One meter per line, so a price change is a one-line diff."""
    head = json.dumps({"note": note, "asOf": as_of, "currency": book.currency}, indent=1)[:-2]
    meters = ",\n".join("  " + json.dumps(meter_price_record(row)) for row in book.rows)
    return f'{head},\n "meters": [\n{meters}\n ]\n}}\n'


def load_default_meters(path: Path | None = None) -> MeterFile:
    """The shipped meter prices (``shared/pricing/meters.default.json``) or the file at ``path``."""
    target = path or DEFAULT_METERS
    return parse_meter_file(target.read_text(encoding="utf-8"), target.name)

