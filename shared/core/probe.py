"""Pure rules of the synthetic probe: attempts, nearest-rank percentiles, per-deployment summaries
and the incident state machine ("alert once per incident, recover once").  No I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from fractions import Fraction
from typing import Literal

Mode = Literal["chat", "stream"]
IncidentEvent = Literal["opened", "recovered"]


@dataclass(frozen=True)
class ProbeAttempt:
    """One probe call to one deployment (after its retries): what the caller saw."""

    at: datetime  # when the call started (UTC)
    deployment: str
    mode: Mode
    success: bool
    status: int | None  # HTTP status; None when no response arrived (timeout, connection error)
    latency_ms: float  # start of the last try to the complete response (stream: to its end)
    run_id: str
    tries: int = 1
    ttft_ms: float | None = None  # streamed calls: start of the last try to the first content token
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    region: str | None = None  # x-ms-region response header
    request_id: str | None = None  # apim-request-id (or x-request-id) response header
    error: str | None = None  # error class, e.g. APITimeoutError, RateLimitError


def nearest_rank(values: Sequence[float], percentile: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least ``percentile`` % of the values <= it.

    Rank ``ceil(p / 100 * n)`` (1-based) of the sorted values, at least 1, so p=0 is the minimum and
    p=100 the maximum; always one of the values, never interpolated.  ``None`` for no values.
    ``p`` is taken at its decimal value (``Fraction(str(p))``), so 95 % of 20 is exactly rank 19.
    """
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {percentile}")
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(Fraction(str(percentile)) * len(ordered) / 100)
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True)
class ProbeSummary:
    deployment: str
    attempts: int
    successes: int
    availability_pct: float | None  # successes / attempts * 100, 2 decimals; None without attempts
    latency_p50_ms: float | None  # nearest-rank over successful attempts only
    latency_p95_ms: float | None
    ttft_p50_ms: float | None  # streamed successful attempts only
    ttft_p95_ms: float | None
    last_success: datetime | None
    last_failure: datetime | None
    consecutive_failures: int  # failed runs since the last successful run (a run fails if any mode failed)


def summarize(attempts: Iterable[ProbeAttempt]) -> dict[str, ProbeSummary]:
    by_deployment: dict[str, list[ProbeAttempt]] = {}
    for attempt in attempts:
        by_deployment.setdefault(attempt.deployment, []).append(attempt)
    return {name: _summary(name, rows) for name, rows in sorted(by_deployment.items())}


def _summary(deployment: str, rows: list[ProbeAttempt]) -> ProbeSummary:
    rows = sorted(rows, key=lambda a: (a.at, a.mode))
    ok = [a for a in rows if a.success]
    latencies = [a.latency_ms for a in ok]
    ttfts = [a.ttft_ms for a in ok if a.ttft_ms is not None]
    return ProbeSummary(
        deployment=deployment,
        attempts=len(rows),
        successes=len(ok),
        availability_pct=round(100 * len(ok) / len(rows), 2) if rows else None,
        latency_p50_ms=nearest_rank(latencies, 50),
        latency_p95_ms=nearest_rank(latencies, 95),
        ttft_p50_ms=nearest_rank(ttfts, 50),
        ttft_p95_ms=nearest_rank(ttfts, 95),
        last_success=max((a.at for a in ok), default=None),
        last_failure=max((a.at for a in rows if not a.success), default=None),
        consecutive_failures=trailing_failed_runs(rows),
    )


def trailing_failed_runs(rows: Sequence[ProbeAttempt]) -> int:
    """Failed runs after the last successful one; attempts of one run share ``run_id``."""
    runs: dict[str, tuple[datetime, bool]] = {}
    for a in rows:
        start, ok = runs.get(a.run_id, (a.at, True))
        runs[a.run_id] = (min(start, a.at), ok and a.success)
    count = 0
    for _, ok in sorted(runs.values(), reverse=True):
        if ok:
            break
        count += 1
    return count


@dataclass(frozen=True)
class IncidentState:
    """Per deployment, persisted between runs (and processes)."""

    consecutive_failures: int = 0
    open: bool = False
    opened_at: datetime | None = None
    last_success: datetime | None = None
    last_failure: datetime | None = None
    last_error: str | None = None
    # An event whose notification has not been delivered yet (the notifier failed); retried next run.
    pending: IncidentEvent | None = None


def advance(state: IncidentState, success: bool, at: datetime, threshold: int,
            error: str | None = None) -> tuple[IncidentState, IncidentEvent | None]:
    """The state after one probe run of a deployment, and the event to announce (if any).

    ``threshold`` consecutive failed runs open an incident (once); the first success after that
    closes it (once).  Further failures while open, or successes while closed, announce nothing.
    """
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    if success:
        event: IncidentEvent | None = "recovered" if state.open else None
        if state.pending == "opened":
            event = None  # the opening was never delivered: announcing its end would confuse
        # opened_at is kept (of the last incident) so the recovery names the incident it closes.
        return IncidentState(last_success=at, last_failure=state.last_failure, last_error=state.last_error,
                             opened_at=state.opened_at,
                             pending=state.pending if state.pending == "recovered" else None), event
    failures = state.consecutive_failures + 1
    new = replace(state, consecutive_failures=failures, last_failure=at, last_error=error)
    if state.open or failures < threshold:
        return new, None
    # A recovery that was never delivered is superseded by the new opening.
    return replace(new, open=True, opened_at=at, pending=None), "opened"
