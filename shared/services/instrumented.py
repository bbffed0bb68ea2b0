"""Telemetry at the port boundary: a prober and an alert channel wrapped so every probe call and
every alert delivery attempt is a span (and probe calls feed the latency and availability metrics),
without the services that use them knowing.  ``shared.composition`` does the wrapping.
"""

from __future__ import annotations

from typing import Any

from shared.core.alerting import Alert
from shared.core.probe import Mode, ProbeAttempt
from shared.ports import AlertChannel
from shared.services import telemetry
from shared.services.probe import Prober


class InstrumentedProber:
    """Implements ``Prober``: span ``probe.call`` per call, ``chargeback.probe.latency`` and ``...availability``."""

    def __init__(self, prober: Prober) -> None:
        self._prober = prober

    def probe(self, deployment: str, mode: Mode, deadline: float, run_id: str) -> ProbeAttempt:
        with telemetry.span("probe.call", {"probe.deployment": deployment, "probe.mode": mode,
                                           "probe.run_id": run_id}) as span:
            attempt = self._prober.probe(deployment, mode, deadline, run_id)
            span.set("probe.success", attempt.success)
            span.set("probe.status", attempt.status or 0)
            span.set("probe.tries", attempt.tries)
            if attempt.error:
                span.set("probe.error", attempt.error)
        labels = {"deployment": deployment, "mode": mode}
        telemetry.measure(telemetry.PROBE_LATENCY, attempt.latency_ms, {**labels, "success": attempt.success})
        telemetry.gauge(telemetry.PROBE_AVAILABILITY, 1.0 if attempt.success else 0.0, labels)
        return attempt

    def describe(self) -> str:
        return self._prober.describe()

    def close(self) -> None:
        self._prober.close()


class InstrumentedChannel:
    """Implements ``AlertChannel``: span ``alert.delivery`` per attempt (a failed one marked as an error)."""

    def __init__(self, channel: AlertChannel) -> None:
        self._channel = channel
        self.kind = channel.kind

    @property
    def label(self) -> str:
        return self._channel.label

    def send(self, alert: Alert) -> None:
        with telemetry.span("alert.delivery", {"alert.channel": self.label, "alert.id": alert.alert_id,
                                               "alert.kind": alert.kind}):
            self._channel.send(alert)

    def post(self, body: dict[str, Any]) -> None:
        kind = str(body.get("type") or "message")  # the generic document's type; cards have none
        with telemetry.span("alert.delivery", {"alert.channel": self.label, "alert.kind": kind}):
            self._channel.post(body)

    def __repr__(self) -> str:
        return f"InstrumentedChannel({self.label})"
