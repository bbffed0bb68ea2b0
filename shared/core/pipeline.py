"""The pipeline watching itself: how far the rollup lags, what the last run saw, and the lag
incident state machine ("alert once per incident, recover once").  Pure: no I/O here.

**Lag** is ``now - watermark``: the watermark is the end of the last hour range the rollup
completed, so a healthy pipeline lags by the ingestion delay plus at most one schedule interval.
Before any watermark exists, the lag runs from the first time the watch looked (``watching_since``),
so a pipeline that never succeeds still falls behind visibly instead of staying "unknown".

**Incident**: lag beyond the limit opens one (announced once); the first check at or under the
limit closes it (announced once, naming the same incident).  An announcement the channels did not
take stays ``pending`` and is retried by the next check; a recovery whose opening was never
delivered is not announced.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from shared.core.moments import iso

LagEvent = Literal["opened", "recovered"]


@dataclass(frozen=True)
class PipelineStatus:
    """What the last scheduled run saw (stored by each run; read by ``/api/health``)."""

    last_run_at: datetime | None = None
    last_success_at: datetime | None = None  # the last run whose rollup completed
    last_failure_at: datetime | None = None
    last_error: str | None = None
    outbox_pending: int | None = None
    outbox_failed: int | None = None
    quarantined_rows: int | None = None  # None: no quarantine store wired


@dataclass(frozen=True)
class LagIncident:
    open: bool = False
    opened_at: datetime | None = None
    recovered_at: datetime | None = None
    watching_since: datetime | None = None
    lag_seconds: float | None = None  # at the last check
    pending: LagEvent | None = None  # announced by a check whose delivery failed: retried next check

    @property
    def incident_id(self) -> str | None:
        """Stable for one incident (its opening time): the recovery carries the opening's id."""
        if self.opened_at is None:
            return None
        return hashlib.sha256(f"pipeline-lag|{iso(self.opened_at)}".encode()).hexdigest()[:16]


def watermark_lag(now: datetime, watermark: datetime | None, watching_since: datetime | None) -> timedelta | None:
    """How far the rollup is behind ``now``; ``None`` while nothing tells (no watermark, never watched)."""
    since = watermark if watermark is not None else watching_since
    return None if since is None else max(now - since, timedelta(0))


def advance_lag(state: LagIncident, lag: timedelta, limit: timedelta,
                now: datetime) -> tuple[LagIncident, LagEvent | None]:
    """The state after one check measuring ``lag``, and the event to announce (if any)."""
    checked = replace(state, lag_seconds=lag.total_seconds(), watching_since=state.watching_since or now)
    if lag > limit:
        if state.open:
            return checked, None
        # A recovery that was never delivered is superseded by the new opening.
        return replace(checked, open=True, opened_at=now, recovered_at=None, pending=None), "opened"
    if not state.open:
        return checked, None
    if state.pending == "opened":  # its opening never reached anyone: announcing its end would confuse
        return replace(checked, open=False, recovered_at=now, pending=None), None
    return replace(checked, open=False, recovered_at=now, pending=None), "recovered"
