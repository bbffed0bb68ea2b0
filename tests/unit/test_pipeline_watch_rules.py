"""The pipeline watch's rules, on in-memory ports: lag measurement, the lag incident (once per
incident, one recovery, pending on delivery failure, ETag races), /api/health's verdict, and the
telemetry port (metric kinds, the invocation id filter, spans of probe calls and alert deliveries
read back through the OpenTelemetry SDK's in-memory exporters)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.core.alerting import Alert
from shared.core.pipeline import LagIncident, PipelineStatus, advance_lag, watermark_lag
from shared.core.probe import ProbeAttempt
from shared.core.quotas import Period
from shared.errors import ConcurrentUpdateError, DeliveryError, StorageUnavailableError
from shared.services import telemetry
from shared.services.health import pipeline_health
from shared.services.lag_watch import LagReport, PipelineWatch
from shared.services.rollup import WATERMARK_NAME
from tests.fakes import FakeClock, InMemoryWatermarkRepository

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
LIMIT = timedelta(minutes=60)


# -- fakes -------------------------------------------------------------------------------------------
class InMemoryPipelineState:
    """``PipelineStateRepository`` with ETags; ``races`` makes the next puts fail as if another run wrote."""

    def __init__(self) -> None:
        self.stored = PipelineStatus()
        self.incident: LagIncident | None = None
        self.etag = 0
        self.races = 0

    def status(self) -> PipelineStatus:
        return self.stored

    def record_status(self, status: PipelineStatus) -> None:
        merged = {k: v for k, v in vars(status).items() if v is not None}
        self.stored = replace(self.stored, **merged)

    def get_incident(self) -> tuple[LagIncident, str | None]:
        return (LagIncident(), None) if self.incident is None else (self.incident, str(self.etag))

    def put_incident(self, incident: LagIncident, etag: str | None) -> str:
        if self.races:
            self.races -= 1
            self.etag += 1  # someone else's write
            raise ConcurrentUpdateError("changed since read")
        if etag != (None if self.incident is None else str(self.etag)):
            raise ConcurrentUpdateError("changed since read")
        self.incident, self.etag = incident, self.etag + 1
        return str(self.etag)


class RecordingNotifier:
    def __init__(self) -> None:
        self.reports: list[LagReport] = []
        self.failing = False

    def announce(self, report: LagReport) -> None:
        if self.failing:
            raise DeliveryError("channel down")
        self.reports.append(report)


class Backlog:
    def backlog(self) -> dict[str, int]:
        return {"pending": 3, "failed": 1}


class Quarantine:
    def quarantined_count(self) -> int:
        return 2


def watermark_at(marks: InMemoryWatermarkRepository, moment: datetime) -> None:
    marks.advance(WATERMARK_NAME, marks.get(WATERMARK_NAME), moment)


@pytest.fixture
def watch() -> Iterator[tuple[PipelineWatch, InMemoryWatermarkRepository, InMemoryPipelineState, RecordingNotifier,
                              FakeClock]]:
    marks, state, notifier, clock = InMemoryWatermarkRepository(), InMemoryPipelineState(), RecordingNotifier(), \
        FakeClock(T0)
    yield PipelineWatch(marks, state, notifier, max_lag=LIMIT, backlog=Backlog(), quarantine=Quarantine(),
                        clock=clock), marks, state, notifier, clock


# -- lag and the incident state machine ----------------------------------------------------------------
def test_lag_is_measured_from_the_watermark_else_from_the_first_look() -> None:
    assert watermark_lag(T0 + timedelta(minutes=7), T0, None) == timedelta(minutes=7)
    assert watermark_lag(T0 + timedelta(minutes=7), None, T0 - timedelta(minutes=3)) == timedelta(minutes=10)
    assert watermark_lag(T0, None, None) is None
    assert watermark_lag(T0, T0 + timedelta(minutes=1), None) == timedelta(0)  # never negative


def test_an_incident_opens_once_and_recovers_once_under_the_same_id() -> None:
    state, events = LagIncident(), []
    for minutes, lag in ((0, 20), (30, 59), (61, 61), (90, 90), (120, 120), (135, 5), (150, 5)):
        state, event = advance_lag(state, timedelta(minutes=lag), LIMIT, T0 + timedelta(minutes=minutes))
        events.append(event)
        if event == "opened":
            opened_id = state.incident_id
    assert events == [None, None, "opened", None, None, "recovered", None]
    assert state.incident_id == opened_id and state.opened_at == T0 + timedelta(minutes=61)
    assert state.recovered_at == T0 + timedelta(minutes=135) and not state.open
    assert advance_lag(state, LIMIT, LIMIT, T0)[1] is None  # exactly the limit is not behind


def test_a_recovery_whose_opening_never_went_out_is_not_announced() -> None:
    state = LagIncident(open=True, opened_at=T0, pending="opened")
    state, event = advance_lag(state, timedelta(minutes=1), LIMIT, T0 + timedelta(hours=2))
    assert event is None and not state.open and state.pending is None


# -- the watch -----------------------------------------------------------------------------------------
def test_failing_runs_alert_once_past_the_limit_and_recover_once(watch: Any) -> None:
    service, marks, state, notifier, clock = watch
    watermark_at(marks, T0)
    for minutes in (15, 45, 61, 75, 200):
        clock.now = T0 + timedelta(minutes=minutes)
        service.after_run(False, "rollup failed: workspace missing")
    assert [r.event for r in notifier.reports] == ["opened"]
    opened = notifier.reports[0]
    assert opened.lag_seconds == 61 * 60 and opened.limit_minutes == 60 and opened.watermark == T0
    assert state.stored.last_success_at is None and state.stored.last_error == "rollup failed: workspace missing"
    assert (state.stored.outbox_pending, state.stored.outbox_failed, state.stored.quarantined_rows) == (3, 1, 2)

    clock.now = T0 + timedelta(minutes=210)
    watermark_at(marks, clock.now - timedelta(minutes=5))  # the run caught up
    service.after_run(True)
    service.after_run(True)  # a rerun says nothing
    assert [r.event for r in notifier.reports] == ["opened", "recovered"]
    assert notifier.reports[1].incident_id == opened.incident_id
    assert state.stored.last_success_at == T0 + timedelta(minutes=210)
    assert state.stored.last_error == "rollup failed: workspace missing"  # kept: the last failure's reason


def test_an_undelivered_alert_is_delivered_by_the_next_check_once(watch: Any) -> None:
    service, marks, state, notifier, clock = watch
    watermark_at(marks, T0)
    notifier.failing = True
    clock.now = T0 + timedelta(minutes=90)
    first = service.check()
    assert (first.event, first.delivered) == ("opened", False) and state.incident.pending == "opened"
    notifier.failing = False
    clock.now = T0 + timedelta(minutes=95)
    second = service.check()
    assert (second.event, second.delivered) == ("opened", True) and state.incident.pending is None
    clock.now = T0 + timedelta(minutes=100)
    assert service.check().event is None
    assert [r.event for r in notifier.reports] == ["opened"]


def test_a_concurrent_write_is_read_again_and_announced_by_one_run_only(watch: Any) -> None:
    service, marks, state, notifier, clock = watch
    watermark_at(marks, T0)
    clock.now = T0 + timedelta(minutes=90)
    state.races = 2
    assert service.check().event == "opened"
    other = PipelineWatch(marks, state, notifier, max_lag=LIMIT, clock=clock)  # another instance, later
    assert other.check().event is None
    assert len(notifier.reports) == 1


def test_a_watch_that_cannot_read_storage_never_raises(watch: Any, caplog: pytest.LogCaptureFixture) -> None:
    service, marks, *_ = watch

    def down(_: str) -> Any:
        raise StorageUnavailableError("Table Storage is unreachable")

    marks.get = down
    with caplog.at_level(logging.ERROR):
        assert service.after_run(False, "x") is None
    assert "pipeline lag not checked" in caplog.text


# -- /api/health's verdict -----------------------------------------------------------------------------
def test_health_is_ok_then_degraded_past_the_limit_and_unavailable_without_storage() -> None:
    marks, state = InMemoryWatermarkRepository(), InMemoryPipelineState()
    fresh = pipeline_health(lambda: marks, lambda: state, LIMIT, T0)
    assert (fresh.status, fresh.http_status, fresh.lag_seconds) == ("ok", 200, None)

    watermark_at(marks, T0)
    state.record_status(PipelineStatus(last_run_at=T0, last_success_at=T0, outbox_pending=4, outbox_failed=0,
                                       quarantined_rows=7))
    ok = pipeline_health(lambda: marks, lambda: state, LIMIT, T0 + timedelta(minutes=60))
    assert (ok.status, ok.http_status) == ("ok", 200)
    behind = pipeline_health(lambda: marks, lambda: state, LIMIT, T0 + timedelta(minutes=61))
    assert (behind.status, behind.http_status) == ("degraded", 503)
    assert behind.document() == {
        "status": "degraded", "storage": "ok", "lastSuccessfulRollup": "2026-11-20T00:00:00Z",
        "lastRun": "2026-11-20T00:00:00Z", "watermark": "2026-11-20T00:00:00Z", "watermarkLagSeconds": 3660,
        "maxLagMinutes": 60, "outboxBacklog": {"pending": 4, "failed": 0}, "quarantinedRows": 7}

    def unreachable() -> Any:
        raise StorageUnavailableError("Table Storage is unreachable at http://127.0.0.1:1")

    down = pipeline_health(unreachable, lambda: state, LIMIT, T0)
    assert (down.http_status, down.document()) == (503, {"status": "unavailable", "storage": "unavailable"})


def test_before_any_watermark_health_measures_from_the_first_look() -> None:
    marks, state = InMemoryWatermarkRepository(), InMemoryPipelineState()
    state.incident, state.etag = LagIncident(watching_since=T0), 1
    report = pipeline_health(lambda: marks, lambda: state, LIMIT, T0 + timedelta(hours=2))
    assert (report.status, report.lag_seconds) == ("degraded", 7200)


# -- the telemetry port ----------------------------------------------------------------------------------
def test_each_metric_is_recorded_as_its_declared_kind() -> None:
    with pytest.raises(ValueError, match="is a counter, not a gauge"):
        telemetry.gauge(telemetry.LOG_ROWS_READ, 1)
    assert {m.kind for m in telemetry.METRICS.values()} == {"counter", "gauge", "histogram"}


def test_log_records_carry_the_invocation_id_inside_the_invocation_only() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("shared.test_invocation")
    logger.addHandler(handler)
    telemetry.attach_invocation_filter(logger)
    try:
        with telemetry.invocation("abc-123"):
            logger.warning("inside")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    assert [(r.getMessage(), r.invocation_id) for r in records] == [("inside", "abc-123"),  # type: ignore[attr-defined]
                                                                    ("outside", "")]


@pytest.fixture
def otel() -> Iterator[tuple[Any, Any]]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from shared.adapters.otel import OpenTelemetry

    spans, tracer_provider, reader = InMemorySpanExporter(), TracerProvider(), InMemoryMetricReader()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    previous = telemetry.install(OpenTelemetry(tracer_provider, MeterProvider(metric_readers=[reader])))
    try:
        yield spans, reader
    finally:
        telemetry.install(previous)


class ScriptedProber:
    def __init__(self, outcomes: list[tuple[bool, float]]) -> None:
        self.outcomes = outcomes

    def probe(self, deployment: str, mode: Any, deadline: float, run_id: str) -> ProbeAttempt:
        success, latency = self.outcomes.pop(0)
        return ProbeAttempt(T0, deployment, mode, success, 200 if success else 503, latency, run_id,
                            error=None if success else "InternalServerError")

    def describe(self) -> str:
        return "scripted"

    def close(self) -> None:
        pass


def test_probe_calls_are_spans_with_latency_and_availability(otel: tuple[Any, Any]) -> None:
    from shared.services.instrumented import InstrumentedProber

    spans, reader = otel
    prober = InstrumentedProber(ScriptedProber([(True, 120.0), (False, 480.0)]))
    prober.probe("gpt-4o", "chat", 0.0, "run1")
    prober.probe("gpt-4o", "chat", 0.0, "run2")
    calls = [s for s in spans.get_finished_spans() if s.name == "probe.call"]
    assert [(s.attributes["probe.success"], s.attributes["probe.status"]) for s in calls] == [(True, 200), (False, 503)]
    metrics = {m.name: m for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
               for m in sm.metrics}
    latency = {p.attributes["success"]: (p.count, p.sum) for p in metrics[telemetry.PROBE_LATENCY].data.data_points}
    assert latency == {True: (1, 120.0), False: (1, 480.0)}
    [availability] = metrics[telemetry.PROBE_AVAILABILITY].data.data_points
    assert availability.value == 0.0 and dict(availability.attributes) == {"deployment": "gpt-4o", "mode": "chat"}


class RefusingChannel:
    kind = "webhook"
    label = "webhook-0000"

    def send(self, alert: Alert) -> None:
        raise DeliveryError("webhook-0000: HTTP 500")

    def post(self, body: dict[str, Any]) -> None:
        pass


def test_alert_deliveries_are_spans_and_a_refused_one_is_an_error(otel: tuple[Any, Any]) -> None:
    from opentelemetry.trace import StatusCode

    from shared.services.instrumented import InstrumentedChannel

    spans, _ = otel
    channel = InstrumentedChannel(RefusingChannel())
    channel.post({"type": "pipeline-lag", "event": "opened"})

    alert = Alert("team-a", Period.DAY, T0, T0 + timedelta(days=1), "threshold", 80, 80, 100, Decimal(0), None,
                  "EUR", 0, Decimal("80.0"), T0)
    with pytest.raises(DeliveryError):
        channel.send(alert)
    posted, sent = spans.get_finished_spans()
    assert (posted.name, posted.attributes["alert.kind"], posted.status.status_code) == (
        "alert.delivery", "pipeline-lag", StatusCode.UNSET)
    assert (sent.attributes["alert.id"], sent.status.status_code) == (alert.alert_id, StatusCode.ERROR)
    assert channel.kind == "webhook" and channel.label == "webhook-0000"
