"""Quota evaluation after each rollup: record due alerts, enforce, deliver the outbox.

Order of one run, and why:

1. **Evaluate** the current UTC day and month (and any earlier day/month the rollup window
   touched, for late rows) from the *stored* day rows, each priced on its own date.
2. **Record** every due alert in the outbox, create-if-absent under a deterministic key, before
   anything is sent: an alert exists once per (subscription, period, threshold).
3. **Enforce** (``ENFORCEMENT_MODE``): suspend subscriptions at 100 % of a current quota, reactivate
   the ones *this app* suspended once they are under every current quota again (new period, or
   the quota raised).  Skipped when evaluation failed, so missing data never reactivates anyone.
4. **Deliver** every pending alert, and failed ones for a few more runs: claim it (ETag), send to
   each channel not yet served with retries and exponential backoff, store progress after each
   channel.  A crash between 2 and 4 leaves a pending entry the next run delivers; a crash mid-round
   leaves a lease that expires.  Channel failures never stop other channels.

Failures are collected, not raised mid-way, so one failing part never hides the others; the caller
raises :class:`AlertRunError` after the run (the rollup and its watermark are already done).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.core.alerting import FAILED, PENDING, SENT, PeriodUsage, due_alerts, over_limit
from shared.core.pricing import Cost, PriceTable
from shared.core.quotas import Period, QuotaBook
from shared.core.usage import Granularity, is_team_subscription
from shared.core.windows import Window
from shared.errors import AlertRunError, ChargebackError, DeliveryError
from shared.ports import (
    AlertChannel,
    AlertOutbox,
    EnforcementLedger,
    OutboxEntry,
    QuotaRepository,
    SubscriptionControl,
    UsageRepository,
)
from shared.services.anomalies import AnomalyDetector
from shared.services.costing import usage_costs

log = logging.getLogger(__name__)


@dataclass
class AlertRunResult:
    as_of: datetime
    periods: int = 0
    recorded: int = 0
    anomalies: int = 0  # spend anomalies recorded (delivered with the quota alerts)
    delivered: int = 0
    failed: int = 0
    waiting: int = 0  # pending with no channel configured
    suspended: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"quota alerts as of {self.as_of.isoformat()}: {self.periods} subscription-periods evaluated, "
                f"{self.recorded} new alerts, {self.delivered} delivered, {self.failed} failed")
        if self.anomalies:
            text += f", {self.anomalies} spend anomalies"
        if self.waiting:
            text += f", {self.waiting} waiting for a channel"
        if self.suspended or self.reactivated:
            text += f"; suspended {self.suspended or '-'}, reactivated {self.reactivated or '-'}"
        return text

    def raise_for_errors(self) -> None:
        if self.errors:
            raise AlertRunError("quota alerts: " + "; ".join(self.errors))


class AlertService:
    def __init__(self, usage: UsageRepository, quotas: QuotaRepository, outbox: AlertOutbox,
                 channels: Sequence[AlertChannel], prices: Callable[[], PriceTable], *,
                 thresholds: Sequence[int], ingestion_delay: timedelta,
                 enforcement_mode: str = "off", control: SubscriptionControl | None = None,
                 ledger: EnforcementLedger | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], None] = time.sleep, retries: int = 3,
                 backoff: timedelta = timedelta(seconds=1), lease: timedelta = timedelta(minutes=5),
                 max_rounds: int = 5, anomalies: AnomalyDetector | None = None) -> None:
        if enforcement_mode != "off" and (control is None or ledger is None):
            raise ValueError("enforcement needs a subscription control and a ledger")
        self.usage, self.quotas, self.outbox = usage, quotas, outbox
        self.channels = list(channels)
        self.prices = prices
        self.thresholds = tuple(thresholds)
        self.ingestion_delay = ingestion_delay
        self.enforcement_mode = enforcement_mode
        self.control, self.ledger = control, ledger
        self.clock, self.sleep = clock, sleep
        self.retries, self.backoff, self.lease, self.max_rounds = max(1, retries), backoff, lease, max_rounds
        self.anomalies = anomalies

    # -- the run ------------------------------------------------------------------------------------
    def run(self, window: Window | None = None) -> AlertRunResult:
        now = self.clock()
        as_of = now - self.ingestion_delay  # the data horizon: what the rollup has seen
        result = AlertRunResult(as_of)
        evaluated: tuple[list[PeriodUsage], QuotaBook] | None = None
        try:
            evaluated = self._evaluate(as_of, window, now, result)
        except ChargebackError as exc:
            log.error("quota evaluation failed: %s", exc)
            result.errors.append(f"evaluation failed: {exc}")
        if self.anomalies is not None:
            try:
                self._record_anomalies(self.anomalies, as_of, window, now, result)
            except ChargebackError as exc:
                log.error("spend anomaly check failed: %s", exc)
                result.errors.append(f"anomaly check failed: {exc}")
        if self.enforcement_mode != "off" and evaluated is not None:
            self._enforce(*evaluated, as_of, now, result)
        try:
            self._deliver(result)
        except ChargebackError as exc:
            log.error("alert delivery failed: %s", exc)
            result.errors.append(f"delivery failed: {exc}")
        return result

    def _evaluate(self, as_of: datetime, window: Window | None, now: datetime,
                  result: AlertRunResult) -> tuple[list[PeriodUsage], QuotaBook] | None:
        book = QuotaBook(self.quotas.all())
        if not book and (self.enforcement_mode == "off" or not self._ledger_suspended()):
            return None  # no quotas: nothing to evaluate, nobody to reactivate
        table = self.prices()
        usages = period_usages(self.usage, table, as_of, window)
        result.periods = len(usages)
        for alert in due_alerts(usages, book, self.thresholds, as_of, table.currency):
            if self.outbox.record(alert, now):
                result.recorded += 1
                log.info("alert recorded: %s %s %s %s", alert.subscription_id, alert.period.value,
                         alert.period_label, alert.kind if alert.kind == "forecast" else f"{alert.threshold}%")
        return usages, book

    def _record_anomalies(self, detector: AnomalyDetector, as_of: datetime, window: Window | None, now: datetime,
                          result: AlertRunResult) -> None:
        _, days = evaluation_periods(as_of, window)
        for alert in detector.due(days, self.prices(), as_of):
            if self.outbox.record(alert, now):
                result.anomalies += 1
                log.info("spend anomaly recorded: %s on %s: %s %s (usually %s)", alert.subscription_id,
                         alert.period_label, alert.cost, alert.currency, alert.baseline_cost)

    def _ledger_suspended(self) -> dict[str, str]:
        return self.ledger.suspended() if self.ledger is not None else {}

    # -- enforcement --------------------------------------------------------------------------------
    def _enforce(self, usages: list[PeriodUsage], book: QuotaBook, as_of: datetime, now: datetime,
                 result: AlertRunResult) -> None:
        assert self.control is not None and self.ledger is not None
        mode = self.enforcement_mode
        try:
            suspended = self.ledger.suspended()
        except ChargebackError as exc:
            result.errors.append(f"enforcement ledger unreadable: {exc}")
            return
        over = {sub: why for sub, why in over_limit(usages, book, as_of).items() if is_team_subscription(sub)}
        for sub, reasons in sorted(over.items()):
            if suspended.get(sub) == mode:
                continue  # already done in this mode
            try:
                self.control.set_state(sub, "suspended")
                self.ledger.mark(sub, mode, "over quota: " + ", ".join(reasons), now)
                result.suspended.append(sub)
            except ChargebackError as exc:
                log.error("enforcement: could not suspend %s: %s", sub, exc)
                result.errors.append(f"suspend {sub}: {exc}")
        for sub, record_mode in sorted(suspended.items()):
            if sub in over:
                continue
            try:
                if record_mode == mode:
                    self.control.set_state(sub, "active")
                    result.reactivated.append(sub)
                    self.ledger.clear(sub)
                elif record_mode == "dryrun":
                    self.ledger.clear(sub)  # nothing was really suspended
                else:
                    log.warning("enforcement: %s was suspended with ENFORCEMENT_MODE=%s and is under quota "
                                "again; not reactivated in %s mode", sub, record_mode, mode)
            except ChargebackError as exc:
                log.error("enforcement: could not reactivate %s: %s", sub, exc)
                result.errors.append(f"reactivate {sub}: {exc}")

    # -- delivery -----------------------------------------------------------------------------------
    def _deliver(self, result: AlertRunResult) -> None:
        entries = self.outbox.deliverable(self.clock(), self.max_rounds)
        if not self.channels:
            result.waiting = len(entries)
            if entries:
                log.warning("%d quota alerts wait in the outbox: no alert channel is configured", len(entries))
            return
        for entry in entries:
            claimed = self.outbox.claim(entry, self.clock(), self.lease)
            if claimed is None:
                continue  # another run is delivering it
            error = self._deliver_one(claimed)
            if error is None:
                result.delivered += 1
            else:
                result.failed += 1
                result.errors.append(f"alert {claimed.alert.alert_id} ({claimed.alert.subscription_id}) "
                                     f"not delivered: {error}")

    def _deliver_one(self, entry: OutboxEntry) -> str | None:
        """One delivery round; ``None`` when every channel has the alert, else the errors."""
        done = set(entry.delivered)
        problems = []
        for channel in self.channels:
            if channel.label in done:
                continue
            error = self._send_with_retries(channel, entry)
            if error is None:
                done.add(channel.label)
                entry = self.outbox.finish(entry, PENDING, frozenset(done), "", self.clock())  # progress
            else:
                problems.append(error)
        errors = "; ".join(problems)
        self.outbox.finish(entry, FAILED if problems else SENT, frozenset(done), errors, self.clock())
        if problems:
            log.error("alert %s: %s (delivery round %d of at most %d)", entry.alert.alert_id, errors,
                      entry.attempts, self.max_rounds)
            return errors
        log.info("alert %s delivered to %d channel(s)", entry.alert.alert_id, len(done))
        return None

    def _send_with_retries(self, channel: AlertChannel, entry: OutboxEntry) -> str | None:
        """``None`` once the channel accepted the alert, else the last error (no URL in it)."""
        last = ""
        for attempt in range(self.retries):
            try:
                channel.send(entry.alert)
                return None
            except DeliveryError as exc:
                last = str(exc)
                log.warning("alert %s via %s, attempt %d/%d: %s", entry.alert.alert_id, channel.label,
                            attempt + 1, self.retries, exc)
                if not exc.retriable:
                    break
                if attempt + 1 < self.retries:
                    self.sleep((self.backoff * (2 ** attempt)).total_seconds())
        return last


def evaluation_periods(as_of: datetime, window: Window | None) -> tuple[list[datetime], list[datetime]]:
    """(month starts, day starts) to evaluate: those containing ``as_of`` and any the window reached."""
    first = min(window.start, as_of) if window is not None else as_of
    days = []
    day = Granularity.DAY.period_start(first)
    while day <= as_of:
        days.append(day)
        day += timedelta(days=1)
    months = sorted({Granularity.MONTH.period_start(d) for d in days})
    return months, days


def period_usages(repository: UsageRepository, table: PriceTable, as_of: datetime,
                  window: Window | None = None) -> list[PeriodUsage]:
    """Day- and month-to-date usage per subscription, from the stored day rows (priced per day)."""
    months, days = evaluation_periods(as_of, window)
    wanted_days = set(days)
    rows = repository.read_all(Granularity.DAY, months[0], Period.MONTH.bounds(months[-1])[1])
    rows = [row for row in rows if row.period_start <= as_of]
    totals: dict[tuple[str, Period, datetime], tuple[int, Cost]] = {}
    # priced as the chargeback prices them: per meter of the deployment in force, PTU shares included
    for row, cost in zip(rows, usage_costs(rows, repository, table), strict=True):
        slots = [(Period.MONTH, Granularity.MONTH.period_start(row.period_start))]
        if row.period_start in wanted_days:
            slots.append((Period.DAY, row.period_start))
        for period, start in slots:
            key = (row.subscription_id, period, start)
            tokens, so_far = totals.get(key, (0, Cost()))
            totals[key] = (tokens + row.counters.total_tokens, so_far + cost)
    usages = []
    for (sub, period, start), (tokens, cost) in sorted(totals.items()):
        _, end = period.bounds(start)
        usages.append(PeriodUsage(sub, period, start, end, tokens, Decimal(cost.amount), cost.unpriced_tokens))
    return usages
