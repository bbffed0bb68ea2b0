"""In-memory fakes of the ports services depend on (``shared/ports.py`` and the Protocols next to
the services), so a service can be tested without Azurite, a workspace or a network server.

Each fake keeps the contract its Protocol documents, including the failure a real adapter gives
(an ETag-guarded write that lost a race raises ``ConcurrentUpdateError``), and records what it
was asked so tests can check the calls.  The only production in-memory stores
(``MemoryDeploymentStore``, ``MemorySubscriptionStore``) live next to their table adapters.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from azure.core.credentials import AccessToken

from shared.core.alerting import FAILED, PENDING, SENT, Alert
from shared.core.meters import PriceBook, StoredBook
from shared.core.months import next_month
from shared.core.pricing import Price
from shared.core.quotas import Period, Quota
from shared.core.usage import Granularity, UsageKey, UsageRow, merge
from shared.errors import AlreadyExistsError, ConcurrentUpdateError, DeliveryError, EnforcementError
from shared.ports import MonthParts, OutboxEntry, Watermark
from shared.queries import Query


class FakeClock:
    """A clock a test sets by hand: ``clock()`` is ``clock.now``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


class FakeCredential:
    """A token credential (``azure.core.credentials.TokenCredential``) with a static token and no
    identity endpoint; remembers the scopes each call asked for."""

    def __init__(self, token: str = "fake-token") -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


# -- rollup --------------------------------------------------------------------------------------
class FakeLogSource:
    """``LogSource``: answers a usage query with the given records whose ``PeriodStart`` falls in
    ``[window_start, window_end)``, as the KQL's time filter does; remembers every call."""

    def __init__(self, records: Iterable[Mapping[str, Any]]) -> None:
        self.records = [dict(record) for record in records]
        self.calls: list[tuple[str, dict[str, object]]] = []

    def run(self, query: Query, parameters: Mapping[str, object]) -> list[dict[str, Any]]:
        self.calls.append((query.name, dict(parameters)))
        start, end = parameters["window_start"], parameters["window_end"]
        assert isinstance(start, datetime) and isinstance(end, datetime)
        return [dict(r) for r in self.records if start <= r["PeriodStart"] < end]

    def describe(self) -> str:
        return f"fake log source ({len(self.records)} records)"


class InMemoryUsageRepository:
    """``UsageRepository``: one row per (granularity, period start, key), an upsert replaces it.

    Its period index is its day rows (complete unless a test sets ``index_complete`` false); touched
    marks are kept apart.  Every ``read`` is recorded in ``read_calls``, every ``month_sums`` in
    ``month_sum_calls``, every ``month_parts`` in ``month_part_calls``."""

    def __init__(self) -> None:
        self.rows: dict[tuple[Granularity, datetime, UsageKey], UsageRow] = {}
        self.upserts = 0  # rows written, replacements included
        self.touched: set[tuple[str, datetime]] = set()
        self.index_complete = True
        self.read_calls: list[tuple[str, Granularity, datetime, datetime]] = []
        self.month_sum_calls: list[tuple[datetime, frozenset[str]]] = []
        self.month_part_calls: list[tuple[datetime, frozenset[str], frozenset[tuple[str, datetime]]]] = []

    def upsert(self, rows: Iterable[UsageRow]) -> int:
        written = 0
        for row in rows:
            self.rows[(row.granularity, row.period_start, row.key)] = row
            written += 1
        self.upserts += written
        return written

    def read(self, subscription_id: str, granularity: Granularity, start: datetime,
             end: datetime) -> list[UsageRow]:
        self.read_calls.append((subscription_id, granularity, start, end))  # list.append: safe from threads
        return [row for row in self.read_all(granularity, start, end) if row.subscription_id == subscription_id]

    def mark_touched(self, days: Iterable[tuple[str, datetime]]) -> int:
        marks = set(days)
        self.touched |= marks
        return len(marks)

    def touched_subscriptions(self, day: datetime) -> frozenset[str]:
        return frozenset(subscription for subscription, at in self.touched if at == day)

    def indexed_subscriptions(self, day: datetime) -> frozenset[str] | None:
        if not self.index_complete:
            return None
        return frozenset(row.subscription_id for (g, at, _), row in list(self.rows.items())
                         if g is Granularity.DAY and at == day)

    def month_sums(self, month: datetime, subscriptions: frozenset[str]) -> list[UsageRow] | None:
        """The month rows of ``subscriptions`` summed from the stored day rows (the index), as one read."""
        self.month_sum_calls.append((month, subscriptions))
        if not self.index_complete:
            return None
        return merge(self._days_of(month, subscriptions), Granularity.MONTH)

    def month_parts(self, month: datetime, subscriptions: frozenset[str],
                    apart: frozenset[tuple[str, datetime]]) -> MonthParts | None:
        """As ``month_sums``, the day rows of the (subscription, day)s ``apart`` returned as stored."""
        self.month_part_calls.append((month, subscriptions, apart))
        if not self.index_complete:
            return None
        days = self._days_of(month, subscriptions)
        return MonthParts(merge([row for row in days if (row.subscription_id, row.period_start) not in apart],
                                Granularity.MONTH),
                          [row for row in days if (row.subscription_id, row.period_start) in apart])

    def _days_of(self, month: datetime, subscriptions: frozenset[str]) -> list[UsageRow]:
        return [row for (g, at, _), row in list(self.rows.items())
                if g is Granularity.DAY and month <= at < next_month(month) and row.subscription_id in subscriptions]

    def read_all(self, granularity: Granularity, start: datetime, end: datetime) -> list[UsageRow]:
        return sorted((row for (g, at, _), row in self.rows.items() if g is granularity and start <= at < end),
                      key=lambda row: (row.period_start, row.subscription_id, row.key.model, row.key.deployment))


class InMemoryWatermarkRepository:
    """``WatermarkRepository`` with ETags: ``advance`` from a stale ``previous`` raises
    ``ConcurrentUpdateError`` (``AlreadyExistsError`` when it believed there was none yet)."""

    def __init__(self) -> None:
        self.values: dict[str, Watermark] = {}
        self._versions = 0

    def get(self, name: str) -> Watermark:
        return self.values.get(name, Watermark(None, None))

    def advance(self, name: str, previous: Watermark, value: datetime) -> Watermark:
        current = self.get(name)
        if current.etag != previous.etag:
            error = AlreadyExistsError if previous.etag is None else ConcurrentUpdateError
            raise error(f"watermark {name!r} changed since it was read")
        self._versions += 1
        stored = Watermark(value, f"etag-{self._versions}")
        self.values[name] = stored
        return stored


# -- pricing, quotas, alerts, enforcement -------------------------------------------------------
class InMemoryPriceOverrideRepository:
    """``PriceOverrideRepository``: one override per (model, effective date)."""

    def __init__(self) -> None:
        self.prices: dict[tuple[str, date], tuple[Price, str]] = {}

    def list_prices(self) -> list[tuple[Price, str]]:
        return [self.prices[key] for key in sorted(self.prices)]

    def put_price(self, price: Price, currency: str) -> None:
        self.prices[(price.model.lower(), price.effective_from)] = (price, currency)

    def delete_price(self, model: str, effective_from: date) -> bool:
        return self.prices.pop((model.lower(), effective_from), None) is not None


class InMemoryQuotaRepository:
    """``QuotaRepository``: one quota per (subscription, period)."""

    def __init__(self, quotas: Iterable[Quota] = ()) -> None:
        self.quotas: dict[tuple[str, Period], Quota] = {}
        for quota in quotas:
            self.put(quota)

    def put(self, quota: Quota) -> None:
        self.quotas[(quota.subscription_id, quota.period)] = quota

    def for_subscription(self, subscription_id: str) -> list[Quota]:
        return [q for (sub, _), q in sorted(self.quotas.items()) if sub == subscription_id]

    def all(self) -> list[Quota]:
        return [self.quotas[key] for key in sorted(self.quotas)]

    def delete(self, subscription_id: str, period: Period | None) -> int:
        doomed = [key for key in self.quotas if key[0] == subscription_id and period in (None, key[1])]
        for key in doomed:
            del self.quotas[key]
        return len(doomed)


class InMemoryAlertOutbox:
    """``AlertOutbox`` as the table adapter behaves: created if absent under (subscription, row
    key), every state change guarded by the entry's ETag, a claimed entry leased."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], OutboxEntry] = {}
        self._versions = 0

    def _etag(self) -> str:
        self._versions += 1
        return f"etag-{self._versions}"

    def _store(self, entry: OutboxEntry, expected_etag: str) -> OutboxEntry:
        key = (entry.alert.subscription_id, entry.alert.row_key)
        if self.entries[key].etag != expected_etag:
            raise ConcurrentUpdateError(f"alert {entry.alert.alert_id} changed since it was read")
        stored = replace(entry, etag=self._etag())
        self.entries[key] = stored
        return stored

    def record(self, alert: Alert, now: datetime) -> bool:
        key = (alert.subscription_id, alert.row_key)
        if key in self.entries:
            return False
        self.entries[key] = OutboxEntry(alert, PENDING, 0, "", frozenset(), now, None, None, self._etag())
        return True

    def deliverable(self, now: datetime, max_attempts: int) -> list[OutboxEntry]:
        ready = [e for e in self.entries.values()
                 if (e.status == PENDING or (e.status == FAILED and e.attempts < max_attempts))
                 and (e.lease_until is None or e.lease_until <= now)]
        return sorted(ready, key=lambda e: (e.created_at, e.alert.subscription_id, e.alert.row_key))

    def claim(self, entry: OutboxEntry, now: datetime, lease: timedelta) -> OutboxEntry | None:
        try:
            return self._store(replace(entry, attempts=entry.attempts + 1, lease_until=now + lease), entry.etag)
        except ConcurrentUpdateError:
            return None

    def finish(self, entry: OutboxEntry, status: str, delivered: frozenset[str], error: str,
               now: datetime) -> OutboxEntry:
        lease = entry.lease_until if status == PENDING and entry.lease_until else now
        finished = replace(entry, status=status, delivered=delivered, last_error=error, lease_until=lease,
                           sent_at=now if status == SENT else entry.sent_at)
        return self._store(finished, entry.etag)

    def list_alerts(self, subscription_id: str | None, status: str | None, limit: int) -> list[OutboxEntry]:
        chosen = [e for e in self.entries.values()
                  if subscription_id in (None, e.alert.subscription_id) and status in (None, e.status)]
        return sorted(chosen, key=lambda e: (e.created_at, e.alert.row_key), reverse=True)[:limit]


class RecordingChannel:
    """``AlertChannel``: keeps what it was sent; ``failures`` errors are raised first, in order."""

    def __init__(self, name: str = "hook", kind: str = "webhook",
                 failures: Iterable[DeliveryError] = ()) -> None:
        self.kind = kind
        self.name = name
        self.failures = list(failures)
        self.sent: list[Alert] = []
        self.posted: list[dict[str, Any]] = []

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"

    def send(self, alert: Alert) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(alert)

    def post(self, body: dict[str, Any]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.posted.append(body)


class FakeControl:
    """``SubscriptionControl``: records (subscription, state) calls; fails for ``failing`` ones."""

    def __init__(self, failing: set[str] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.failing = failing or set()

    def set_state(self, subscription_id: str, state: str) -> None:
        if subscription_id in self.failing:
            raise EnforcementError(f"APIM subscription {subscription_id}: ARM answered HTTP 500")
        self.calls.append((subscription_id, state))


class InMemoryEnforcementLedger:
    """``EnforcementLedger``: subscription -> (mode, reason, when)."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[str, str, datetime]] = {}

    def suspended(self) -> dict[str, str]:
        return {sub: mode for sub, (mode, _, _) in self.records.items()}

    def mark(self, subscription_id: str, mode: str, reason: str, now: datetime) -> None:
        self.records[subscription_id] = (mode, reason, now)

    def clear(self, subscription_id: str) -> None:
        self.records.pop(subscription_id, None)


class InMemoryMeterPriceStore:
    """``MeterPriceStore`` (price sync): one current book per currency, replaced atomically."""

    def __init__(self) -> None:
        self.current: dict[str, StoredBook] = {}
        self.commits = 0

    def load(self, currency: str) -> StoredBook:
        return self.current.get(currency, StoredBook(PriceBook(currency), None))

    def commit(self, book: PriceBook, previous: StoredBook, sync_id: str, as_of: datetime) -> StoredBook:
        if self.load(book.currency).version != previous.version:
            raise ConcurrentUpdateError("another sync committed first")
        self.commits += 1
        stored = StoredBook(book, str(self.commits), f"gen-{sync_id}", as_of)
        self.current[book.currency] = stored
        return stored



class RecordingSleep:
    """A ``sleep`` that only remembers how long it was asked to wait (backoff without waiting)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
