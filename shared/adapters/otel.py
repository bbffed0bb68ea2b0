"""OpenTelemetry behind the telemetry port (:mod:`shared.services.telemetry`).

Imported only by :func:`shared.services.telemetry.configure` on a function's first invocation (the
OpenTelemetry SDK and the Azure Monitor distro take ~0.5 s to import: never at cold start).

:class:`OpenTelemetry` maps the port onto any tracer and meter provider (tests hand it the SDK's
in-memory exporters); :func:`azure_monitor` sets the providers up with Application Insights as the
destination, :func:`console_exporters` with the console (``TELEMETRY_CONSOLE=true``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace

from shared.services.telemetry import METRICS, Attributes, AttributeValue

INSTRUMENTATION_SCOPE = "apim-chargeback"
APP_LOGGER = "shared"  # the app's own loggers; the Functions host captures its own logs separately


class _OtelSpan:
    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def set(self, name: str, value: AttributeValue) -> None:
        self._span.set_attribute(name, value)


class OpenTelemetry:
    """Implements ``Telemetry``: spans on the tracer, each metric on an instrument made on first use."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._tracer = tracer_provider.get_tracer(INSTRUMENTATION_SCOPE)
        self._meter = meter_provider.get_meter(INSTRUMENTATION_SCOPE)
        self._instruments: dict[str, Any] = {}

    @contextmanager
    def span(self, name: str, attributes: Attributes) -> Iterator[_OtelSpan]:
        # start_as_current_span records an escaping exception and marks the span as an error.
        with self._tracer.start_as_current_span(name, attributes=dict(attributes)) as span:
            yield _OtelSpan(span)

    def record(self, name: str, value: float, attributes: Attributes) -> None:
        instrument = self._instruments.get(name)
        if instrument is None:
            instrument = self._instruments[name] = self._create(name)
        kind = METRICS[name].kind
        if kind == "counter":
            instrument.add(value, dict(attributes))
        elif kind == "gauge":
            instrument.set(value, dict(attributes))
        else:
            instrument.record(value, dict(attributes))

    def _create(self, name: str) -> Any:
        metric = METRICS[name]
        make = {"counter": self._meter.create_counter, "gauge": self._meter.create_gauge,
                "histogram": self._meter.create_histogram}[metric.kind]
        return make(name, unit=metric.unit, description=metric.description)

    def flush(self) -> None:
        for provider in (self._tracer_provider, self._meter_provider):
            force_flush = getattr(provider, "force_flush", None)
            if force_flush is not None:
                force_flush()


def managed_identity_credential(environ: Mapping[str, str]) -> Any | None:
    """The credential Application Insights ingestion needs when its local auth is off.

    ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` is ``Authorization=AAD`` (system-assigned identity)
    or ``Authorization=AAD;ClientId=<id>`` (user-assigned); the Functions host reads it for its own
    telemetry, the Python distro needs it as a credential object.
    """
    parts = dict(part.split("=", 1) for part in environ.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "")
                 .split(";") if "=" in part)
    if parts.get("Authorization", "").upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    client_id = parts.get("ClientId")
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()


def azure_monitor(connection_string: str, environ: Mapping[str, str]) -> OpenTelemetry:
    """Spans, metrics and the app's log records to Application Insights (Azure Monitor distro)."""
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(connection_string=connection_string, credential=managed_identity_credential(environ),
                            logger_name=APP_LOGGER)
    logging.getLogger(APP_LOGGER).setLevel(logging.INFO)
    return OpenTelemetry(trace.get_tracer_provider(), metrics.get_meter_provider())


def console_exporters() -> OpenTelemetry:
    """Spans and metrics printed on stdout: a local look at what Azure would receive."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    reader = PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=60_000)
    return OpenTelemetry(tracer_provider, MeterProvider(metric_readers=[reader]))
