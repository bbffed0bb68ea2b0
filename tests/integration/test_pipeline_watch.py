"""Who watches the pipeline, on Azurite + a DuckDB workspace: the telemetry a real rollup emits
(read back through the OpenTelemetry SDK's in-memory exporters), the lag alert through a real
webhook (once per incident, one recovery, nothing twice), /api/health on the state the runs
stored, and the invocation id on the timer's log records."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.adapters.otel import OpenTelemetry
from shared.api.app import AppContext, create_app
from shared.composition import alert_outbox, alert_service, pipeline_watch, quota_store, rollup_service, table_store
from shared.core.quotas import make_quota
from shared.core.usage import Granularity
from shared.services import telemetry
from shared.services.rollup import WATERMARK_NAME
from shared.services.scheduled_run import ScheduledRun, scheduled_run
from shared.settings import Settings
from shared.tooling.demo.demo_run import write_demo_workspace
from tests.billing_support import Receiver
from tests.conftest import DEMO_END, process_environment
from tests.fakes import FakeClock

NOW = DEMO_END


@pytest.fixture
def otel() -> Iterator[tuple[Any, Any]]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    previous = telemetry.install(OpenTelemetry(tracer_provider, MeterProvider(metric_readers=[reader])))
    try:
        yield spans, reader
    finally:
        telemetry.install(previous)


def metric_points(reader: Any) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """metric name -> [(attributes, point)], from one collection of the in-memory reader."""
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = [(dict(p.attributes or {}), p) for p in metric.data.data_points]
    return found


def run(settings: Settings, clock: FakeClock) -> ScheduledRun:
    service = rollup_service(settings)
    service.clock = clock
    return scheduled_run(service, lambda: alert_service(settings, clock=clock),
                         watch=lambda: pipeline_watch(settings, clock=clock))


def get_health(settings: Settings, clock: FakeClock) -> httpx.Response:
    async def call() -> httpx.Response:
        app = create_app(AppContext(lambda: settings, clock=clock))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.get("/api/health")

    return asyncio.run(call())


# -- telemetry of a real rollup ---------------------------------------------------------------------
def test_a_real_rollup_reports_its_spans_and_metrics(settings: Settings, otel: tuple[Any, Any]) -> None:
    spans, reader = otel
    settings = settings.with_overrides(ROLLUP_MAX_CHUNK_HOURS="1", ROLLUP_INGESTION_DELAY_MINUTES="0",
                                       ROLLUP_LOOKBACK_MINUTES="120")
    write_demo_workspace(settings.local_workspace_path, seed=3, days=1, end=NOW)
    quota_store(settings).put(make_quota("*", "month", 1))  # every subscription over it: alerts pending
    clock = FakeClock(NOW)
    done = run(settings, clock)

    rolled = done.rollup
    assert rolled.window is not None and rolled.queries == 2 and rolled.rows_read > 0
    chunks = [s for s in spans.get_finished_spans() if s.name == "rollup.chunk"]
    assert len(chunks) == rolled.queries
    assert sum(s.attributes["rows_read"] for s in chunks) == rolled.rows_read
    assert [s.attributes["chunk.start"] for s in chunks] == [(NOW - timedelta(hours=2)).isoformat(),
                                                             (NOW - timedelta(hours=1)).isoformat()]

    # Independently: what the usage table holds for the window, read back.
    hours = table_store(settings).read_all(Granularity.HOUR, rolled.window.start, rolled.window.end)
    requests = sum(row.counters.requests for row in hours)
    unmetered = sum(row.counters.unmetered_requests for row in hours)
    assert requests > 0 and len(hours) == rolled.hourly_rows_written
    pending = len(alert_outbox(settings).list_alerts(None, "pending", 10_000))
    assert pending == done.alerts.recorded > 0

    points = metric_points(reader)
    assert points[telemetry.LOG_ROWS_READ][0][1].value == rolled.rows_read
    assert points[telemetry.USAGE_ROWS_WRITTEN][0][1].value == rolled.hourly_rows_written + rolled.derived_rows_written
    assert points[telemetry.REQUESTS_ROLLED_UP][0][1].value == requests
    assert points[telemetry.UNMETERED_SHARE][0][1].value == pytest.approx(unmetered / requests)
    watermark = table_store(settings).get(WATERMARK_NAME).value
    assert watermark == NOW
    assert points[telemetry.WATERMARK_LAG][0][1].value == 0
    backlog = {attrs["status"]: point.value for attrs, point in points[telemetry.OUTBOX_BACKLOG]}
    assert backlog == {"pending": pending, "failed": 0}
    quarantined = table_store(settings).quarantined_count()
    assert [point.value for _, point in points[telemetry.QUARANTINED_ROWS]] == [quarantined]

    # The same numbers on /api/health, from the status the run stored.
    health = get_health(settings, FakeClock(NOW + timedelta(minutes=10)))
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok", "storage": "ok", "lastSuccessfulRollup": "2026-11-20T00:00:00Z",
        "lastRun": "2026-11-20T00:00:00Z", "watermark": "2026-11-20T00:00:00Z", "watermarkLagSeconds": 600,
        "maxLagMinutes": 60, "outboxBacklog": {"pending": pending, "failed": 0},
        "quarantinedRows": quarantined}


# -- the lag alert ------------------------------------------------------------------------------------
def test_rollup_failing_past_the_limit_alerts_once_and_recovers_once(settings: Settings, tmp_path: Path) -> None:
    with Receiver() as receiver:
        settings = settings.with_overrides(ALERT_WEBHOOK_URLS=receiver.url("/hook"), ROLLUP_MAX_LAG_MINUTES="60",
                                           ROLLUP_INGESTION_DELAY_MINUTES="0", ROLLUP_LOOKBACK_MINUTES="60")
        workspace = settings.local_workspace_path
        write_demo_workspace(workspace, seed=5, days=1, end=NOW + timedelta(hours=3))
        clock = FakeClock(NOW)
        run(settings, clock)  # healthy: watermark = NOW
        def lag_posts() -> list[dict[str, Any]]:
            return [b for b in receiver.bodies("/hook") if b.get("type") == "pipeline-lag"]

        workspace.rename(tmp_path / "away.duckdb")  # from now on every run fails

        for minutes, expected in ((30, 0), (59, 0), (61, 1), (90, 1), (120, 1)):
            clock.now = NOW + timedelta(minutes=minutes)
            with pytest.raises(Exception, match="does not exist"):
                run(settings, clock)
            assert len(lag_posts()) == expected, minutes
        opened = lag_posts()[0]
        assert opened["event"] == "opened" and opened["lagSeconds"] == 61 * 60 and opened["limitMinutes"] == 60
        assert opened["watermark"] == "2026-11-20T00:00:00Z" and opened["openedAt"] == "2026-11-20T01:01:00Z"

        degraded = get_health(settings, clock)  # 120 minutes behind
        assert degraded.status_code == 503
        assert degraded.json()["status"] == "degraded" and degraded.json()["watermarkLagSeconds"] == 120 * 60
        assert degraded.json()["lastSuccessfulRollup"] == "2026-11-20T00:00:00Z"

        (tmp_path / "away.duckdb").rename(workspace)  # fixed: the next run catches up
        clock.now = NOW + timedelta(minutes=135)
        run(settings, clock)
        clock.now = NOW + timedelta(minutes=150)
        run(settings, clock)  # a rerun: nothing to say
        posts = lag_posts()
        assert [p["event"] for p in posts] == ["opened", "recovered"]
        assert posts[1]["incidentId"] == posts[0]["incidentId"]
        assert posts[1]["recoveredAt"] == "2026-11-20T02:15:00Z" and posts[1]["lagSeconds"] == 0

        healthy = get_health(settings, clock)
        assert healthy.status_code == 200 and healthy.json()["status"] == "ok"
        assert healthy.json()["lastSuccessfulRollup"] == "2026-11-20T02:30:00Z"


def test_a_lag_alert_the_channel_refused_is_sent_by_the_next_run(settings: Settings, tmp_path: Path) -> None:
    with Receiver() as receiver:
        settings = settings.with_overrides(ALERT_WEBHOOK_URLS=receiver.url("/hook"), ROLLUP_MAX_LAG_MINUTES="30",
                                           ROLLUP_INGESTION_DELAY_MINUTES="0")
        clock = FakeClock(NOW)
        receiver.status["/hook"] = 500
        watch = pipeline_watch(settings, clock=clock)
        watch.after_run(False, "never ran")  # no watermark: the lag runs from this first look
        clock.now = NOW + timedelta(minutes=31)
        first = watch.after_run(False, "still failing")
        assert first is not None and first.event == "opened" and not first.delivered
        receiver.status["/hook"] = 200
        clock.now = NOW + timedelta(minutes=40)
        second = watch.after_run(False, "still failing")
        assert second is not None and second.event == "opened" and second.delivered
        clock.now = NOW + timedelta(minutes=45)
        assert pipeline_watch(settings, clock=clock).after_run(False, "still failing").event is None  # type: ignore[union-attr]
        bodies = receiver.bodies("/hook")
        assert [b["event"] for b in bodies] == ["opened", "opened"]  # refused once, then delivered once
        assert bodies[0]["incidentId"] == bodies[1]["incidentId"]


# -- logs carry the invocation id -------------------------------------------------------------------
class _Invocation:
    invocation_id = "3f6c1e0a-invocation"
    function_name = "rollup"
    function_directory = "."
    trace_context = None
    retry_context = None
    thread_local_storage = None


def test_timer_log_records_carry_the_invocation_id(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    from azure.functions.timer import TimerRequest

    from shared.triggers import rollup_timer

    write_demo_workspace(settings.local_workspace_path, seed=3, days=1)
    timer = rollup_timer.rollup._function.get_user_function()
    with process_environment(settings), caplog.at_level("INFO"):
        timer(TimerRequest(), _Invocation())
    mine = [r for r in caplog.records if r.name.startswith("shared.")]
    assert any("rollup done" in r.getMessage() for r in mine)
    assert {getattr(r, "invocation_id", None) for r in mine} == {"3f6c1e0a-invocation"}
