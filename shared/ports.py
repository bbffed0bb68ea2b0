"""The small interfaces services depend on; adapters implement them, tests may fake them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from shared.core.alerting import Alert
from shared.core.pricing import Price
from shared.core.quotas import Period, Quota
from shared.core.usage import Granularity, UsageRow
from shared.queries import Query


class LogSource(Protocol):
    """Runs a query file with bound parameters and returns only its (aggregated) result rows."""

    def run(self, query: Query, parameters: Mapping[str, object]) -> list[dict[str, Any]]: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Watermark:
    value: datetime | None
    etag: str | None  # None: no watermark stored yet


class UsageRepository(Protocol):
    def upsert(self, rows: Iterable[UsageRow]) -> int: ...

    def read(self, subscription_id: str, granularity: Granularity, start: datetime,
             end: datetime) -> list[UsageRow]: ...

    def read_all(self, granularity: Granularity, start: datetime, end: datetime) -> list[UsageRow]: ...


@dataclass(frozen=True)
class MonthParts:
    """One month read from the period index before a write replaces some of its day rows: ``sums``,
    the month rows of every day row but those of the (subscription, day)s set apart; ``apart``, the
    day rows of those, as stored (the write replaces the ones it holds, the rest stay)."""

    sums: list[UsageRow]
    apart: list[UsageRow]


class RollupUsageRepository(UsageRepository, Protocol):
    """The usage store as the rollup writes it: also which subscriptions may hold hourly rows of a
    day, so it reads only theirs (``shared.services.stored_hours``): a mark written before a
    (subscription, day)'s first hour, and the period index's day rows (rows stored before marks)."""

    def mark_touched(self, days: Iterable[tuple[str, datetime]]) -> int:
        """Record that these (subscription, day)s are about to get hourly rows; returns marks written."""
        ...

    def touched_subscriptions(self, day: datetime) -> frozenset[str]:
        """Subscriptions (stored names) marked for ``day``."""
        ...

    def indexed_subscriptions(self, day: datetime) -> frozenset[str] | None:
        """Subscriptions with a day row of ``day`` in the period index; ``None`` when the index is not
        known to be complete (then any subscription may have rows)."""
        ...

    def month_sums(self, month: datetime, subscriptions: frozenset[str]) -> list[UsageRow] | None:
        """The month rows of ``subscriptions`` (stored names) summed from the period index's day rows
        of ``month``: what merging each one's stored days gives.  ``None`` while the index is not
        known to be complete (then each subscription's days are read on their own)."""
        ...

    def month_parts(self, month: datetime, subscriptions: frozenset[str],
                    apart: frozenset[tuple[str, datetime]]) -> MonthParts | None:
        """:meth:`month_sums` with the day rows of the (subscription, day)s ``apart`` (stored names,
        day starts) kept apart, as stored: a writer about to replace those days sums the month it will
        leave before writing it.  ``None`` while the index is not known to be complete."""
        ...


class WatermarkRepository(Protocol):
    def get(self, name: str) -> Watermark: ...

    def advance(self, name: str, previous: Watermark, value: datetime) -> Watermark: ...



@dataclass(frozen=True)
class QuarantineRetry:
    kept: int  # entities in quarantine before the retry
    written: int  # ... accepted now (and cleared)
    still_refused: int
    usage_rows: tuple[UsageRow, ...] = ()  # usage rows among the written: their days and months are derived again


class QuarantineRepository(Protocol):
    """Entities Table Storage refused, kept aside so they never stop a run."""

    def quarantined_count(self) -> int:
        """How many are kept now (for ``/api/health``)."""
        ...

    def retry_quarantined(self) -> QuarantineRetry: ...


class RollupState(Protocol):
    """What one rollup run leaves for the next: result rows per hour of log (to size its chunks)."""

    def rows_per_hour(self, name: str) -> float | None: ...

    def record_rows_per_hour(self, name: str, value: float) -> None: ...


class WriterLease(Protocol):
    """One writer at a time: a lease with an owner and an expiry, renewed while the run lasts."""

    def acquire(self) -> None:
        """Take the lease, waiting a bounded time; raises ``LeaseHeldError`` if another run keeps it."""
        ...

    def confirm(self) -> None:
        """Before a write: renew when due; raises ``LeaseLostError`` if another run took the lease."""
        ...

    def release(self) -> None: ...

Rows = Sequence[Mapping[str, Any]]


# -- pricing, quotas, alerts, enforcement -------------------------------------------------------
class PriceOverrideRepository(Protocol):
    """Operator prices kept in Table Storage, laid over the price file."""

    def list_prices(self) -> list[tuple[Price, str]]:
        """Every override with the currency it was set in."""
        ...

    def put_price(self, price: Price, currency: str) -> None: ...

    def delete_price(self, model: str, effective_from: date) -> bool: ...


class QuotaRepository(Protocol):
    def put(self, quota: Quota) -> None: ...

    def for_subscription(self, subscription_id: str) -> list[Quota]: ...

    def all(self) -> list[Quota]: ...

    def delete(self, subscription_id: str, period: Period | None) -> int: ...


@dataclass(frozen=True)
class OutboxEntry:
    """An alert as recorded in the outbox, with its delivery state."""

    alert: Alert
    status: str  # pending | sent | failed
    attempts: int  # delivery rounds so far (each round retries every channel with backoff)
    last_error: str
    delivered: frozenset[str]  # labels of the channels that accepted it
    created_at: datetime
    sent_at: datetime | None
    lease_until: datetime | None
    etag: str


class AlertOutbox(Protocol):
    def record(self, alert: Alert, now: datetime) -> bool:
        """Create the alert if absent; ``False`` when it was already recorded (nothing changes)."""
        ...

    def deliverable(self, now: datetime, max_attempts: int) -> list[OutboxEntry]: ...

    def claim(self, entry: OutboxEntry, now: datetime, lease: timedelta) -> OutboxEntry | None:
        """Take the entry for one delivery round (ETag-guarded); ``None`` if another run has it."""
        ...

    def finish(self, entry: OutboxEntry, status: str, delivered: frozenset[str], error: str,
               now: datetime) -> OutboxEntry:
        """Store the delivery state (ETag-guarded by ``entry``); returns the entry with its new ETag."""
        ...

    def list_alerts(self, subscription_id: str | None, status: str | None, limit: int) -> list[OutboxEntry]: ...


class AlertChannel(Protocol):
    kind: str  # webhook, teams or slack: how a message is rendered for it

    @property
    def label(self) -> str:
        """Kind plus a short digest of the URL: stable across runs, reveals nothing."""
        ...

    def send(self, alert: Alert) -> None:
        """Deliver once; raise ``DeliveryError`` (``retriable`` or not) when not accepted."""
        ...

    def post(self, body: dict[str, Any]) -> None:
        """POST an already rendered JSON document (probe incidents)."""
        ...


class SubscriptionControl(Protocol):
    """Suspends / reactivates an APIM subscription."""

    def set_state(self, subscription_id: str, state: str) -> None: ...


class EnforcementLedger(Protocol):
    """Which subscriptions this app suspended (so it only ever reactivates its own suspensions)."""

    def suspended(self) -> dict[str, str]:
        """subscription id -> mode (``on`` or ``dryrun``) it was suspended in."""
        ...

    def mark(self, subscription_id: str, mode: str, reason: str, now: datetime) -> None: ...

    def clear(self, subscription_id: str) -> None: ...


class KeptReportWriter(Protocol):
    """A rendered report on its way into :class:`MonthReportStore`, text chunk by text chunk."""

    def add(self, text: str) -> None: ...

    def commit(self) -> bool:
        """Keep what was added (the whole report); ``False`` when it is not kept (too large)."""
        ...


class MonthReportStore(Protocol):
    """Org-wide month reports rendered once and kept, each under the digest of its inputs
    (``shared.adapters.month_report_tables``); the stored rows' generation is one of them."""

    def generation(self, month: str) -> str | None:
        """The month's settled report generation (``shared.adapters.report_generations``); ``None``
        while its rows are being written (then nothing is kept or served)."""
        ...

    def read(self, report: str, month: str, inputs: str) -> Iterator[str] | None:
        """The kept report's text, when one was kept under exactly ``inputs``; else ``None``."""
        ...

    def writer(self, report: str, month: str, inputs: str) -> KeptReportWriter: ...
