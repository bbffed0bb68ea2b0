"""The synthetic probe: call every configured deployment through APIM, store the attempts, keep
the incident state per deployment and announce each incident once (and its recovery once).

Ports (implemented in ``shared.adapters.probe_client`` / ``probe_tables``; tests may fake them):
``Prober`` makes one measured probe call, ``ProbeRepository`` stores attempts and incident state,
``IncidentNotifier`` is told when an incident opens or recovers (default: an error in the log).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from shared.core.moments import iso, parse_moment
from shared.core.probe import (
    IncidentEvent,
    IncidentState,
    Mode,
    ProbeAttempt,
    ProbeSummary,
    advance,
    summarize,
)
from shared.errors import ConcurrentUpdateError, InvalidRequestError

log = logging.getLogger(__name__)
STATE_RETRIES = 5
DEFAULT_RANGE = timedelta(hours=24)
MAX_RANGE = timedelta(days=31)


class Prober(Protocol):
    def probe(self, deployment: str, mode: Mode, deadline: float, run_id: str) -> ProbeAttempt: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


class ProbeRepository(Protocol):
    def add(self, attempts: Iterable[ProbeAttempt]) -> int: ...

    def attempts(self, deployments: Iterable[str] | None, start: datetime, end: datetime) -> list[ProbeAttempt]: ...

    def get_state(self, deployment: str) -> tuple[IncidentState, str | None]: ...

    def put_state(self, deployment: str, state: IncidentState, etag: str | None) -> str: ...

    def states(self) -> dict[str, IncidentState]: ...


@dataclass(frozen=True)
class Incident:
    deployment: str
    target: str  # what was probed, e.g. "APIM gateway https://apim.azure-api.net"
    opened_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    recovered_at: datetime | None = None


class IncidentNotifier(Protocol):
    """Told once when a deployment starts failing (threshold reached) and once when it passes again."""

    def opened(self, incident: Incident) -> None: ...

    def recovered(self, incident: Incident) -> None: ...


class LoggingIncidentNotifier:
    """Default notifier: an error in the function log (alert rules on App Insights can pick it up)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log

    def opened(self, incident: Incident) -> None:
        self._log.error("PROBE INCIDENT: deployment %s via %s failing since %s: %d consecutive failed runs "
                        "(last error: %s)", incident.deployment, incident.target, iso(incident.opened_at),
                        incident.consecutive_failures, incident.last_error or "unknown")

    def recovered(self, incident: Incident) -> None:
        self._log.warning("PROBE RECOVERED: deployment %s via %s passes again at %s (incident opened %s)",
                          incident.deployment, incident.target, iso(incident.recovered_at),
                          iso(incident.opened_at))


def modes_for(stream: str) -> tuple[Mode, ...]:
    """PROBE_STREAM ``false`` / ``true`` / ``both`` -> the calls made per deployment."""
    return {"false": ("chat",), "true": ("stream",), "both": ("chat", "stream")}[stream]  # type: ignore[return-value]


@dataclass
class ProbeRunResult:
    run_id: str
    attempts: list[ProbeAttempt] = field(default_factory=list)
    events: list[tuple[str, IncidentEvent]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # deployments not probed: the run's budget ran out
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.attempts) and all(a.success for a in self.attempts) and not self.skipped

    def summary(self) -> str:
        failed = [a for a in self.attempts if not a.success]
        text = (f"probe run {self.run_id}: {len(self.attempts)} calls, {len(failed)} failed, "
                f"{len(self.skipped)} skipped in {self.seconds:.2f}s")
        if self.events:
            text += "; " + ", ".join(f"{name} {event}" for name, event in self.events)
        return text


class ProbeService:
    def __init__(self, prober: Prober, store: ProbeRepository, notifier: IncidentNotifier | None = None, *,
                 deployments: Sequence[str], modes: Sequence[Mode] = ("chat",), failure_threshold: int = 3,
                 budget_seconds: float = 120.0, monotonic: Callable[[], float] = time.monotonic,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.prober = prober
        self.store = store
        self.notifier: IncidentNotifier = notifier or LoggingIncidentNotifier()
        self.deployments = tuple(deployments)
        self.modes = tuple(modes)
        self.failure_threshold = failure_threshold
        self.budget_seconds = budget_seconds
        self._monotonic = monotonic
        self._clock = clock

    def run(self) -> ProbeRunResult:
        """Probe each deployment once per mode within the budget, store, update incidents, notify."""
        started = self._monotonic()
        deadline = started + self.budget_seconds
        result = ProbeRunResult(run_id=uuid.uuid4().hex[:12])
        for deployment in self.deployments:
            if self._monotonic() >= deadline:
                result.skipped.append(deployment)
                continue
            for mode in self.modes:
                attempt = self.prober.probe(deployment, mode, deadline, result.run_id)
                log.info("probe %s %s: %s status=%s %.0f ms%s", deployment, mode, "ok" if attempt.success else "FAILED",
                         attempt.status, attempt.latency_ms, f" ({attempt.error})" if attempt.error else "")
                result.attempts.append(attempt)
        if result.skipped:
            log.warning("probe budget of %.0fs used up; not probed this run: %s", self.budget_seconds,
                        ", ".join(result.skipped))
        # Attempts first: even if the incident bookkeeping fails, the measurements are kept.
        self.store.add(result.attempts)
        for deployment in dict.fromkeys(a.deployment for a in result.attempts):
            mine = [a for a in result.attempts if a.deployment == deployment]
            failed = [a for a in mine if not a.success]
            error = (failed[-1].error or f"HTTP {failed[-1].status}") if failed else None
            event = self._record(deployment, not failed, max(a.at for a in mine), error)
            if event:
                result.events.append((deployment, event))
        result.seconds = round(self._monotonic() - started, 3)
        return result

    def close(self) -> None:
        self.prober.close()

    # -- incidents ----------------------------------------------------------------------------------
    def _record(self, deployment: str, success: bool, at: datetime, error: str | None) -> IncidentEvent | None:
        """Apply one run's outcome to the stored state (ETag-guarded) and deliver what it announces.

        Only the run whose write made the transition announces it, so two runs (or two instances)
        never both alert; a notifier failure leaves the event pending for the next run.
        """
        for _ in range(STATE_RETRIES):
            state, etag = self.store.get_state(deployment)
            new, event = advance(state, success, at, self.failure_threshold, error)
            delivering = event or new.pending
            if delivering and not event:
                new = replace(new, pending=None)  # claim the undelivered event from an earlier run
            try:
                etag = self.store.put_state(deployment, new, etag)
            except ConcurrentUpdateError:
                continue  # someone else moved the state: re-read and apply this outcome on top
            if delivering and not self._deliver(deployment, new, delivering, at):
                self._leave_pending(deployment, delivering)
            return event
        log.error("probe state of %s changed under %d attempts to update it; outcome not counted", deployment,
                  STATE_RETRIES)
        return None

    def _deliver(self, deployment: str, state: IncidentState, event: IncidentEvent, at: datetime) -> bool:
        incident = Incident(deployment=deployment, target=self.prober.describe(), opened_at=state.opened_at,
                            consecutive_failures=state.consecutive_failures, last_error=state.last_error,
                            recovered_at=at if event == "recovered" else None)
        try:
            if event == "opened":
                self.notifier.opened(incident)
            else:
                self.notifier.recovered(incident)
        except Exception:  # a broken channel must not break the probe; retried next run
            log.exception("could not deliver probe %s notification for %s; will retry next run", event, deployment)
            return False
        return True

    def _leave_pending(self, deployment: str, event: IncidentEvent) -> None:
        for _ in range(STATE_RETRIES):
            state, etag = self.store.get_state(deployment)
            try:
                self.store.put_state(deployment, replace(state, pending=event), etag)
                return
            except ConcurrentUpdateError:
                continue

    # -- reading --------------------------------------------------------------------------------------
    def report(self, query: ProbeQuery) -> dict[str, object]:
        return probe_report(self.store, query)


@dataclass(frozen=True)
class ProbeQuery:
    deployments: tuple[str, ...]  # empty = all
    start: datetime
    end: datetime  # exclusive


def parse_probe_query(deployments: Sequence[str] | None, start: str | None, end: str | None,
                      now: datetime) -> ProbeQuery:
    """``from`` inclusive (default: 24 hours ago); a date-only ``to`` includes that day, a datetime
    ``to`` is exclusive (default: now)."""
    finish = now.astimezone(UTC)
    if end:
        finish, date_only = parse_moment("to", end)
        finish = finish + timedelta(days=1) if date_only else finish
    begin = parse_moment("from", start)[0] if start else finish - DEFAULT_RANGE
    if begin >= finish:
        raise InvalidRequestError("from", f"must be before 'to' ({iso(begin)} >= {iso(finish)})")
    if finish - begin > MAX_RANGE:
        raise InvalidRequestError("to", f"range longer than {MAX_RANGE.days} days; ask for less")
    names = tuple(dict.fromkeys(d.strip() for d in deployments or () if d.strip()))
    return ProbeQuery(names, begin, finish)



def probe_report(store: ProbeRepository, query: ProbeQuery) -> dict[str, object]:
    attempts = store.attempts(query.deployments or None, query.start, query.end)
    states = store.states()
    summaries = summarize(attempts)
    names = sorted(set(summaries) | set(query.deployments))
    return {
        "from": iso(query.start),
        "to": iso(query.end),
        "deployments": [summary_json(name, summaries.get(name), states.get(name)) for name in names],
        "attempts": [attempt_json(a) for a in attempts],
    }


def summary_json(name: str, summary: ProbeSummary | None, state: IncidentState | None) -> dict[str, object]:
    body: dict[str, object] = {
        "deployment": name,
        "attempts": summary.attempts if summary else 0,
        "successes": summary.successes if summary else 0,
        "availabilityPct": summary.availability_pct if summary else None,
        "latencyP50Ms": summary.latency_p50_ms if summary else None,
        "latencyP95Ms": summary.latency_p95_ms if summary else None,
        "ttftP50Ms": summary.ttft_p50_ms if summary else None,
        "ttftP95Ms": summary.ttft_p95_ms if summary else None,
        "lastSuccess": iso(summary.last_success) if summary else None,
        "lastFailure": iso(summary.last_failure) if summary else None,
        "consecutiveFailures": summary.consecutive_failures if summary else 0,
    }
    body["incident"] = None if state is None else {
        "open": state.open, "openedAt": iso(state.opened_at), "consecutiveFailures": state.consecutive_failures,
        "lastError": state.last_error}
    return body


def attempt_json(a: ProbeAttempt) -> dict[str, object]:
    return {"at": iso(a.at), "deployment": a.deployment, "mode": a.mode, "success": a.success,
            "status": a.status, "latencyMs": a.latency_ms, "ttftMs": a.ttft_ms, "model": a.model,
            "promptTokens": a.prompt_tokens, "completionTokens": a.completion_tokens, "region": a.region,
            "requestId": a.request_id, "error": a.error, "tries": a.tries, "runId": a.run_id}

