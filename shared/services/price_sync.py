"""Price sync: Azure's Retail Prices feed merged into our own effective-dated meter price book.

The feed is read whole first (every page, or the sync fails before anything is stored), parsed
meter by meter (what does not parse is reported, not guessed), merged into the stored book (new
effective rows only where a price changed; nothing is ever removed, because the feed forgets
superseded prices and past usage must keep its price) and committed all-or-nothing: the store
makes the new book current in one atomic step, or leaves the previous one current.

A sync that finds nothing new stores nothing, so running it twice leaves storage as it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.core.meters import MeterParseFailure, MeterPrice, PriceBook, PriceConflict, StoredBook, parse_feed
from shared.errors import ChargebackError


class PriceFeed(Protocol):
    """Every Azure OpenAI item of the Retail Prices feed (all pages), or an error: never part of it."""

    def fetch_items(self, region: str | None, currency: str) -> Sequence[Mapping[str, Any]]: ...


class MeterPriceStore(Protocol):
    """The current price book per currency, replaced atomically."""

    def load(self, currency: str) -> StoredBook:
        """The current book (an empty one in ``currency`` when none was ever stored)."""
        ...

    def commit(self, book: PriceBook, previous: StoredBook, sync_id: str, as_of: datetime) -> StoredBook:
        """Make ``book`` current, only if ``previous`` still is (else ``ConcurrentUpdateError``);
        on any failure the previous book stays current and nothing stored is lost."""
        ...


@dataclass(frozen=True)
class SyncResult:
    added: int  # new effective rows (new meters or changed prices)
    unchanged: int  # feed rows whose price the book already had
    failures: tuple[MeterParseFailure, ...]  # meters that did not parse (or came in another currency)
    as_of: datetime
    conflicts: tuple[PriceConflict, ...] = ()  # restated prices for a start the book already holds
    skipped: int = 0  # feed items that are not Azure OpenAI meters
    generation: str | None = None  # the generation current after the sync


class PriceSyncError(ChargebackError):
    """A price sync could not run (nothing was stored)."""


def new_sync_id(now: datetime) -> str:
    """Sortable by time, unique across concurrent runs: ``20250825T000000Z-1a2b3c4d``."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def sync_prices(client: PriceFeed, store: MeterPriceStore, region: str | None, currency: str,
                now: datetime) -> SyncResult:
    """Fetch the whole feed for ``region`` (``None``: every region) in ``currency``, merge it into the
    stored book and commit it all-or-nothing.  Feed errors (``RetailPricesError``) and storage
    errors propagate with the stored book unchanged."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    items = client.fetch_items(region, currency)  # all pages before anything else happens
    feed = parse_feed(items)
    prices: list[MeterPrice] = []
    failures = list(feed.failures)
    for price in feed.prices:
        if price.currency == currency:
            prices.append(price)
        else:
            failures.append(MeterParseFailure(price.meter_id, price.meter_name,
                                              f"priced in {price.currency}, the sync is in {currency}"))
    stored = store.load(currency)
    if stored.book.currency != currency:
        raise PriceSyncError(f"the stored price book is in {stored.book.currency}, the sync in {currency}")
    merged = stored.book.merge(prices)
    generation = stored.generation
    if merged.added:
        generation = store.commit(merged.book, stored, new_sync_id(now), now).generation
    return SyncResult(len(merged.added), merged.unchanged, tuple(failures), now, merged.conflicts, feed.skipped,
                      generation)
