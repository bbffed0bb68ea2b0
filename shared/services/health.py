"""What ``/api/health`` answers: is storage reachable, and is the pipeline keeping up (the rollup's
watermark lag against ``ROLLUP_MAX_LAG_MINUTES``, the last successful run, the outbox backlog and
the quarantined rows the last run saw)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.core.moments import iso
from shared.core.pipeline import PipelineStatus, watermark_lag
from shared.errors import ChargebackError
from shared.ports import WatermarkRepository
from shared.services.lag_watch import PipelineStateRepository
from shared.services.rollup import WATERMARK_NAME

log = logging.getLogger(__name__)


# -- the pipeline behind the API --------------------------------------------------------------------
OK, DEGRADED, UNAVAILABLE = "ok", "degraded", "unavailable"


@dataclass(frozen=True)
class PipelineHealth:
    """``/api/health``: ``ok`` (200), ``degraded`` (503: the rollup lags past the limit) or
    ``unavailable`` (503: storage does not answer).  Monitors watch the status code."""

    status: str
    max_lag_minutes: int
    watermark: datetime | None = None
    lag_seconds: float | None = None
    pipeline: PipelineStatus | None = None

    @property
    def http_status(self) -> int:
        return 200 if self.status == OK else 503

    def document(self) -> dict[str, object]:
        if self.status == UNAVAILABLE:
            return {"status": UNAVAILABLE, "storage": "unavailable"}
        seen = self.pipeline or PipelineStatus()
        return {
            "status": self.status,
            "storage": "ok",
            "lastSuccessfulRollup": iso(seen.last_success_at),
            "lastRun": iso(seen.last_run_at),
            "watermark": iso(self.watermark),
            "watermarkLagSeconds": None if self.lag_seconds is None else round(self.lag_seconds),
            "maxLagMinutes": self.max_lag_minutes,
            # as of the last scheduled run (health itself stays point reads only)
            "outboxBacklog": None if seen.outbox_pending is None else {"pending": seen.outbox_pending,
                                                                        "failed": seen.outbox_failed or 0},
            "quarantinedRows": seen.quarantined_rows,
        }


def pipeline_health(watermarks: Callable[[], WatermarkRepository], state: Callable[[], PipelineStateRepository],
                    max_lag: timedelta, now: datetime) -> PipelineHealth:
    """Two point reads (watermark, last run's status), three before the first watermark exists.

    Stores are built inside the check, so one that cannot even be built is ``unavailable`` too.
    """
    limit = int(max_lag.total_seconds() // 60)
    try:
        watermark = watermarks().get(WATERMARK_NAME).value
        store = state()
        seen = store.status()
        since = store.get_incident()[0].watching_since if watermark is None else None
    except ChargebackError as exc:
        log.warning("health check: %s", exc)
        return PipelineHealth(UNAVAILABLE, limit)
    lag = watermark_lag(now, watermark, since)
    status = DEGRADED if lag is not None and lag > max_lag else OK
    return PipelineHealth(status, limit, watermark, None if lag is None else lag.total_seconds(), seen)
