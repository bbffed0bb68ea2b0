"""The pipeline's watch, run at the end of every scheduled run (and when a run fails, because
that is when the lag grows): store what the run saw, record the pipeline gauges, and announce a
rollup falling behind ``ROLLUP_MAX_LAG_MINUTES`` once per incident, with one recovery message.

The lag incident is kept like a probe incident (:mod:`shared.services.probe`): read with its ETag,
advanced (:func:`shared.core.pipeline.advance_lag`), written only if nobody changed it meanwhile,
and only the check whose write made a transition announces it, so overlapping runs never alert
twice.  Announcements go through the alert channels (webhook, Teams, Slack) as chat cards, beside
an error (or warning) in the log; a delivery failure leaves the event pending for the next check.
Every step is guarded: watching must never hide the run's own outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.core.chat_cards import ChatMessage, render
from shared.core.moments import iso
from shared.core.pipeline import LagEvent, LagIncident, PipelineStatus, advance_lag, watermark_lag
from shared.errors import ChargebackError, ConcurrentUpdateError, DeliveryError
from shared.ports import AlertChannel, WatermarkRepository
from shared.services import telemetry
from shared.services.rollup import WATERMARK_NAME

log = logging.getLogger(__name__)
STATE_RETRIES = 5
MAX_ERROR = 300


class PipelineStateRepository(Protocol):
    def status(self) -> PipelineStatus: ...

    def record_status(self, status: PipelineStatus) -> None:
        """Merge the fields that are not ``None`` into the stored status."""
        ...

    def get_incident(self) -> tuple[LagIncident, str | None]: ...

    def put_incident(self, incident: LagIncident, etag: str | None) -> str:
        """Store only if unchanged since ``etag`` (``None``: must not exist); else ConcurrentUpdateError."""
        ...


class OutboxBacklog(Protocol):
    def backlog(self) -> dict[str, int]:
        """Alerts not delivered yet: ``{"pending": n, "failed": m}``."""
        ...


class QuarantineCounter(Protocol):
    """The rows Table Storage refused and the rollup set aside (the quarantine store)."""

    def quarantined_count(self) -> int: ...


@dataclass(frozen=True)
class LagReport:
    """What a lag announcement says."""

    event: LagEvent
    incident_id: str
    lag_seconds: float
    limit_minutes: int
    watermark: datetime | None
    opened_at: datetime | None
    recovered_at: datetime | None = None

    def document(self) -> dict[str, Any]:
        """The generic webhook body (receivers de-duplicate on ``incidentId``)."""
        return {"type": "pipeline-lag", "event": self.event, "incidentId": self.incident_id,
                "lagSeconds": round(self.lag_seconds), "limitMinutes": self.limit_minutes,
                "watermark": iso(self.watermark), "openedAt": iso(self.opened_at),
                "recoveredAt": iso(self.recovered_at)}

    def message(self) -> ChatMessage:
        minutes = round(self.lag_seconds / 60)
        if self.event == "opened":
            title = f"Chargeback rollup is {minutes} min behind (limit {self.limit_minutes} min)"
        else:
            title = f"Chargeback rollup caught up ({minutes} min behind)"
        facts = [("Watermark", iso(self.watermark) or "none yet"), ("Lag", f"{minutes} min"),
                 ("Limit", f"{self.limit_minutes} min"), ("Since", iso(self.opened_at) or "-")]
        if self.recovered_at is not None:
            facts.append(("Recovered", iso(self.recovered_at) or "-"))
        return ChatMessage(title, facts, "Attention" if self.event == "opened" else "Good",
                           footnote=f"incident {self.incident_id}")


class LagNotifier(Protocol):
    def announce(self, report: LagReport) -> None:
        """Deliver once; raise (any error) when a channel did not take it: the event stays pending."""
        ...


class ChannelLagNotifier:
    """The log line always; then every alert channel (all tried, any failure raises at the end)."""

    def __init__(self, channels: Sequence[AlertChannel]) -> None:
        self.channels = list(channels)

    def announce(self, report: LagReport) -> None:
        if report.event == "opened":
            log.error("PIPELINE LAG: rollup %.0f min behind (limit %d min), watermark %s; incident %s",
                      report.lag_seconds / 60, report.limit_minutes, iso(report.watermark), report.incident_id)
        else:
            log.warning("PIPELINE LAG RECOVERED: rollup %.0f min behind again; incident %s", report.lag_seconds / 60,
                        report.incident_id)
        failed = []
        for channel in self.channels:
            try:
                channel.post(render(channel.kind, report.message(), report.document()))
            except DeliveryError as exc:
                log.error("lag %s of incident %s not delivered to %s: %s", report.event, report.incident_id,
                          channel.label, exc)
                failed.append(channel.label)
        if failed:
            raise DeliveryError(f"lag {report.event} not delivered to {', '.join(failed)}")


@dataclass(frozen=True)
class LagCheck:
    lag: timedelta | None
    event: LagEvent | None = None
    delivered: bool = True


class PipelineWatch:
    def __init__(self, watermarks: WatermarkRepository, state: PipelineStateRepository, notifier: LagNotifier, *,
                 max_lag: timedelta, backlog: OutboxBacklog | None = None,
                 quarantine: QuarantineCounter | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.watermarks, self.state, self.notifier = watermarks, state, notifier
        self.max_lag = max_lag
        self.backlog, self.quarantine = backlog, quarantine
        self.clock = clock

    def after_run(self, succeeded: bool, error: str | None = None) -> LagCheck | None:
        """Store what this run saw, record the gauges, check the lag.  Never raises a ChargebackError."""
        now = self.clock()
        status = PipelineStatus(last_run_at=now, last_success_at=now if succeeded else None,
                                last_failure_at=None if succeeded else now,
                                last_error=None if succeeded else (error or "failed")[:MAX_ERROR])
        pending, failed = self._backlog()
        status = replace(status, outbox_pending=pending, outbox_failed=failed, quarantined_rows=self._quarantined())
        try:
            self.state.record_status(status)
        except ChargebackError as exc:
            log.error("pipeline status not stored: %s", exc)
        try:
            return self.check(now)
        except ChargebackError as exc:
            log.error("pipeline lag not checked: %s", exc)
            return None

    def _backlog(self) -> tuple[int | None, int | None]:
        """(pending, failed) alerts; ``None`` when unknown."""
        if self.backlog is None:
            return None, None
        try:
            counts = self.backlog.backlog()
        except ChargebackError as exc:
            log.error("outbox backlog not counted: %s", exc)
            return None, None
        for status, number in counts.items():
            telemetry.gauge(telemetry.OUTBOX_BACKLOG, number, {"status": status})
        return counts.get("pending", 0), counts.get("failed", 0)

    def _quarantined(self) -> int | None:
        if self.quarantine is None:
            return None
        try:
            number = self.quarantine.quarantined_count()
        except ChargebackError as exc:
            log.error("quarantined rows not counted: %s", exc)
            return None
        telemetry.gauge(telemetry.QUARANTINED_ROWS, number)
        return number

    def check(self, now: datetime | None = None) -> LagCheck:
        """Measure the lag, advance the incident (ETag-guarded), announce what it opened or closed."""
        now = now or self.clock()
        watermark = self.watermarks.get(WATERMARK_NAME).value
        for _ in range(STATE_RETRIES):
            state, etag = self.state.get_incident()
            lag = watermark_lag(now, watermark, state.watching_since or now)
            assert lag is not None  # watching_since defaults to now
            telemetry.gauge(telemetry.WATERMARK_LAG, lag.total_seconds())
            new, event = advance_lag(state, lag, self.max_lag, now)
            announcing = event or new.pending
            if announcing and not event:
                new = replace(new, pending=None)  # claim the undelivered event of an earlier check
            try:
                self.state.put_incident(new, etag)
            except ConcurrentUpdateError:
                continue  # another run moved the state: re-read and apply this check on top
            if not announcing:
                return LagCheck(lag)
            delivered = self._announce(announcing, new, lag, watermark)
            if not delivered:
                self._leave_pending(announcing)
            return LagCheck(lag, announcing, delivered)
        log.error("lag incident state changed under %d attempts to update it; check skipped", STATE_RETRIES)
        return LagCheck(None)

    def _announce(self, event: LagEvent, state: LagIncident, lag: timedelta, watermark: datetime | None) -> bool:
        report = LagReport(event, state.incident_id or "-", lag.total_seconds(),
                           int(self.max_lag.total_seconds() // 60), watermark, state.opened_at,
                           state.recovered_at if event == "recovered" else None)
        try:
            self.notifier.announce(report)
        except Exception:  # a broken channel must not break the run; retried by the next check
            log.exception("lag %s of incident %s not delivered; retried next run", event, report.incident_id)
            return False
        return True

    def _leave_pending(self, event: LagEvent) -> None:
        for _ in range(STATE_RETRIES):
            state, etag = self.state.get_incident()
            try:
                self.state.put_incident(replace(state, pending=event), etag)
                return
            except ConcurrentUpdateError:
                continue
