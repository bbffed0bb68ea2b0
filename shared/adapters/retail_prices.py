"""Azure's public Retail Prices API (no authentication): every Azure OpenAI meter, all pages.

``GET {feed}?api-version=2023-01-01-preview&currencyCode=USD&$filter=...`` answers
``{"BillingCurrency", "CustomerEntityId", "CustomerEntityType", "Items": [...], "NextPageLink", "Count"}``;
``NextPageLink`` is followed until it is null.  The filter text is built only from validated values
(product names from a fixed list, a region of lowercase letters and digits) and every string is
quoted by doubling ``'``, so nothing a caller passes can change the filter's meaning.

Pages are fetched whole or not at all: a page answering 429, 5xx or not answering is retried a
bounded number of times (``Retry-After`` honoured, capped), and a page that keeps failing raises
:class:`RetailPricesError` naming it, so a caller never sees a partial price list.
Numbers are read as exact decimals (``parse_float=Decimal``), never floats.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx

from shared.core.meters import OPENAI_PRODUCTS
from shared.errors import ChargebackError

DEFAULT_FEED_URL = "https://prices.azure.com/api/retail/prices"
API_VERSION = "2023-01-01-preview"
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
_REGION = re.compile(r"^[a-z0-9]+$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# Query parameters shown in error messages; any other (a proxy's key, say) is masked.
_SHOWN_PARAMETERS = frozenset({"api-version", "currencyCode", "$filter", "$skip"})


class RetailPricesError(ChargebackError):
    """The Retail Prices feed could not be read completely; the message names the page."""


def odata_string(value: str) -> str:
    """An OData string literal: ``'`` doubled inside single quotes."""
    return "'" + value.replace("'", "''") + "'"


def price_filter(region: str | None, products: Iterable[str] = OPENAI_PRODUCTS) -> str:
    """``(productName eq '...' or ...) and armRegionName eq '...'`` from validated values only."""
    chosen = list(products)
    unknown = [p for p in chosen if p not in OPENAI_PRODUCTS]
    if unknown or not chosen:
        raise ValueError(f"products must be some of {OPENAI_PRODUCTS}, got {chosen!r}")
    text = "(" + " or ".join(f"productName eq {odata_string(p)}" for p in chosen) + ")"
    if region is not None:
        if not _REGION.match(region):
            raise ValueError(f"region must be an ARM region name (lowercase letters and digits), got {region!r}")
        text += f" and armRegionName eq {odata_string(region)}"
    return text


def describe_url(url: str) -> str:
    """``url`` safe to log: no user info, only known query parameters shown (others masked)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    query = [(k, v if k in _SHOWN_PARAMETERS else "***") for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="$'() "), ""))


def _origin(url: str) -> tuple[str, str | None, int | None]:
    # The feed's own links name the default port ("https://prices.azure.com:443/..."): compare normalised.
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"https": 443, "http": 80}.get(parts.scheme)


@dataclass(frozen=True)
class RetailPricesClient:
    """Reads the feed.  ``transport`` lets tests point the real client at a loopback server."""

    feed_url: str = DEFAULT_FEED_URL
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    max_wait_seconds: float = 60.0  # cap on any one wait, Retry-After included
    timeout_seconds: float = 30.0
    max_pages: int = 10_000
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_pages < 1:
            raise ValueError("max_attempts and max_pages must be at least 1")

    def first_page_url(self, region: str | None, currency: str,
                       products: Iterable[str] = OPENAI_PRODUCTS) -> str:
        if not _CURRENCY.match(currency):
            raise ValueError(f"currency must be a 3-letter ISO code in capitals, got {currency!r}")
        scheme = urlsplit(self.feed_url).scheme
        if scheme not in ("https", "http") or "?" in self.feed_url:
            raise ValueError("feed URL must be an http(s) URL without a query")
        return (f"{self.feed_url}?api-version={API_VERSION}&currencyCode={currency}"
                f"&$filter={quote(price_filter(region, products), safe='')}")

    def fetch_items(self, region: str | None, currency: str,
                    products: Iterable[str] = OPENAI_PRODUCTS) -> list[dict[str, Any]]:
        """Every item of every page, or :class:`RetailPricesError` (never a partial list)."""
        url: str | None = self.first_page_url(region, currency, products)
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        with httpx.Client(timeout=httpx.Timeout(self.timeout_seconds), transport=self.transport) as client:
            page = 0
            while url is not None:
                page += 1
                if page > self.max_pages or url in seen:
                    raise RetailPricesError(f"Retail Prices feed: page {page} ({describe_url(url)}) repeats an "
                                            f"earlier page or passes {self.max_pages} pages")
                seen.add(url)
                document = self._page(client, url, page)
                items.extend(self._items(document, url, page, currency))
                url = self._next(document, url, page)
        return items

    def _page(self, client: httpx.Client, url: str, page: int) -> dict[str, Any]:
        where = f"page {page} ({describe_url(url)})"
        problem = ""
        for attempt in range(1, self.max_attempts + 1):
            retry_after: float | None = None
            try:
                response = client.get(url, headers={"Accept": "application/json"})
            except httpx.TransportError as exc:
                problem = f"no answer ({type(exc).__name__})"
            else:
                if response.status_code == 200:
                    return self._document(response, where)
                problem = f"HTTP {response.status_code}"
                if response.status_code not in RETRIED_STATUSES:
                    raise RetailPricesError(f"Retail Prices feed: {where} answered {problem}")
                retry_after = _retry_after(response.headers.get("Retry-After"))
            if attempt < self.max_attempts:
                wait = retry_after if retry_after is not None else self.backoff_seconds * 2 ** (attempt - 1)
                self.sleep(min(max(wait, 0.0), self.max_wait_seconds))
        raise RetailPricesError(f"Retail Prices feed: {where} failed {self.max_attempts} times (last: {problem})")

    @staticmethod
    def _document(response: httpx.Response, where: str) -> dict[str, Any]:
        try:
            document = json.loads(response.text, parse_float=Decimal)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RetailPricesError(f"Retail Prices feed: {where} is not JSON") from None
        if not isinstance(document, dict):
            raise RetailPricesError(f"Retail Prices feed: {where} is not a JSON object")
        return document

    @staticmethod
    def _items(document: dict[str, Any], url: str, page: int, currency: str) -> list[dict[str, Any]]:
        where = f"page {page} ({describe_url(url)})"
        items = document.get("Items")
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise RetailPricesError(f"Retail Prices feed: {where} has no Items list of objects")
        billing = document.get("BillingCurrency")
        if billing is not None and billing != currency:
            raise RetailPricesError(f"Retail Prices feed: {where} is in {billing!r}, not {currency}")
        return items

    def _next(self, document: dict[str, Any], url: str, page: int) -> str | None:
        link = document.get("NextPageLink")
        if link is None or link == "":
            return None
        # The link is followed only on the feed's own origin: a page cannot send the client elsewhere.
        if not isinstance(link, str) or _origin(link) != _origin(self.feed_url):
            raise RetailPricesError(f"Retail Prices feed: page {page} ({describe_url(url)}) has a NextPageLink "
                                    "outside the feed's origin")
        return link


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or ``None``."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)
