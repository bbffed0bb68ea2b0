"""Pipeline telemetry through one small port: spans, counters, gauges and histograms.

Services call the module functions (:func:`span`, :func:`count`, :func:`gauge`, :func:`measure`)
and never import OpenTelemetry.  What they reach is whatever :func:`install` put in place: by
default :class:`NoTelemetry` (nothing recorded, nothing imported), in Azure the OpenTelemetry
adapter (:mod:`shared.adapters.otel`) that ``shared.composition.configure_telemetry`` installs when
``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set, or console output when ``TELEMETRY_CONSOLE=true``.

Every metric the app records is named once in :data:`METRICS` (kind, unit, description), so the
adapter creates each instrument the same way wherever it is recorded.

Log records carry the Functions invocation id: :func:`invocation` puts it in a context variable for
the duration of a trigger, and :class:`InvocationIdFilter` (put on the root logger and its handlers
by :func:`attach_invocation_filter`) copies it onto every record as ``invocation_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal, Protocol

AttributeValue = str | int | float | bool
Attributes = Mapping[str, AttributeValue]
Kind = Literal["counter", "gauge", "histogram"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metric:
    kind: Kind
    unit: str
    description: str


LOG_ROWS_READ = "chargeback.rollup.log_rows_read"
USAGE_ROWS_WRITTEN = "chargeback.rollup.usage_rows_written"
REQUESTS_ROLLED_UP = "chargeback.rollup.requests"
UNMETERED_SHARE = "chargeback.rollup.unmetered_share"
WATERMARK_LAG = "chargeback.rollup.watermark_lag"
QUARANTINED_ROWS = "chargeback.rollup.quarantined_rows"
OUTBOX_BACKLOG = "chargeback.alerts.outbox_backlog"
PROBE_LATENCY = "chargeback.probe.latency"
PROBE_AVAILABILITY = "chargeback.probe.availability"

METRICS: dict[str, Metric] = {
    LOG_ROWS_READ: Metric("counter", "{row}", "Rows the usage query returned from the log source"),
    USAGE_ROWS_WRITTEN: Metric("counter", "{row}", "Hourly, daily and monthly usage rows written"),
    REQUESTS_ROLLED_UP: Metric("counter", "{request}", "Gateway requests counted into usage rows"),
    UNMETERED_SHARE: Metric("gauge", "1", "Share of the run's requests without token counts (0-1)"),
    WATERMARK_LAG: Metric("gauge", "s", "Seconds between now and the rollup watermark"),
    QUARANTINED_ROWS: Metric("gauge", "{row}", "Rows Table Storage refused, kept in quarantine"),
    OUTBOX_BACKLOG: Metric("gauge", "{alert}", "Alerts not delivered yet, by status (pending, failed)"),
    PROBE_LATENCY: Metric("histogram", "ms", "Latency of one probe call (after its retries)"),
    PROBE_AVAILABILITY: Metric("gauge", "1", "1 when the last probe call succeeded, else 0 (average = availability)"),
}


class Span(Protocol):
    def set(self, name: str, value: AttributeValue) -> None:
        """Add an attribute to the span (e.g. a count known only at its end)."""
        ...


class Telemetry(Protocol):
    def span(self, name: str, attributes: Attributes) -> AbstractContextManager[Span]:
        """A span around the ``with`` block, the current span's child; an exception marks it failed."""
        ...

    def record(self, name: str, value: float, attributes: Attributes) -> None:
        """One value of the metric ``name`` (a key of :data:`METRICS`), recorded as its kind says."""
        ...

    def flush(self) -> None:
        """Export what is buffered (the end of a function invocation)."""
        ...


class _NoSpan:
    def set(self, name: str, value: AttributeValue) -> None:
        pass


class NoTelemetry:
    """The default: records nothing and costs (almost) nothing."""

    def span(self, name: str, attributes: Attributes) -> AbstractContextManager[Span]:
        return nullcontext(_NoSpan())

    def record(self, name: str, value: float, attributes: Attributes) -> None:
        pass

    def flush(self) -> None:
        pass


_current: Telemetry = NoTelemetry()
_invocation: ContextVar[str] = ContextVar("chargeback_invocation_id", default="")


def install(telemetry: Telemetry) -> Telemetry:
    """Make ``telemetry`` the one the module functions reach; returns the one it replaced."""
    global _current
    previous, _current = _current, telemetry
    return previous


def current() -> Telemetry:
    return _current


def span(name: str, attributes: Attributes | None = None) -> AbstractContextManager[Span]:
    return _current.span(name, attributes or {})


def count(name: str, value: float, attributes: Attributes | None = None) -> None:
    _record(name, value, attributes, "counter")


def gauge(name: str, value: float, attributes: Attributes | None = None) -> None:
    _record(name, value, attributes, "gauge")


def measure(name: str, value: float, attributes: Attributes | None = None) -> None:
    _record(name, value, attributes, "histogram")


def _record(name: str, value: float, attributes: Attributes | None, kind: Kind) -> None:
    if METRICS[name].kind != kind:  # a programming error, caught by the tests
        raise ValueError(f"metric {name} is a {METRICS[name].kind}, not a {kind}")
    _current.record(name, value, attributes or {})


def flush() -> None:
    try:
        _current.flush()
    except Exception:  # telemetry must never fail the work it describes
        log.warning("telemetry flush failed", exc_info=True)


# -- the invocation id on log records ---------------------------------------------------------------
def invocation_id() -> str:
    return _invocation.get()


@contextmanager
def invocation(identifier: str) -> Iterator[None]:
    """Log records made inside the block carry ``identifier`` as ``invocation_id``."""
    token = _invocation.set(identifier)
    try:
        yield
    finally:
        _invocation.reset(token)


class InvocationIdFilter(logging.Filter):
    """Copies the current invocation id onto each record (``%(invocation_id)s`` in a format works)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "invocation_id", ""):
            record.invocation_id = _invocation.get()
        return True


def attach_invocation_filter(logger: logging.Logger | None = None) -> None:
    """Put the filter on ``logger`` (root) and its handlers, once each: handlers see records
    propagated from child loggers, which a logger's own filters do not."""
    target = logger or logging.getLogger()
    for holder in (target, *target.handlers):
        if not any(isinstance(f, InvocationIdFilter) for f in holder.filters):
            holder.addFilter(InvocationIdFilter())
