"""The scheduled pipeline, in one place for the timer and ``chargeback rollup``: the rollup, then
quota alerts and enforcement over the window it completed, then the pipeline's watch.

Alerts run only once the rollup (and its watermark) is complete, so they always see finished
hours; their failure still fails the run, visibly, without touching what the rollup wrote.

The watch (:class:`~shared.services.lag_watch.PipelineWatch`) runs last *whatever happened*, a
failed rollup included: that is exactly when the watermark lag grows, so a pipeline failing run
after run still raises its one lag alert.  It never replaces the run's own error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.errors import ChargebackError
from shared.services import telemetry
from shared.services.alerts import AlertRunResult, AlertService
from shared.services.lag_watch import PipelineWatch
from shared.services.rollup import RollupResult, RollupService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduledRun:
    rollup: RollupResult
    alerts: AlertRunResult


def scheduled_run(rollup: RollupService, alerts: Callable[[], AlertService],
                  report: Callable[[str], None] = lambda _: None,
                  watch: Callable[[], PipelineWatch] | None = None,
                  keep_reports: Callable[[list[datetime]], list[str]] | None = None) -> ScheduledRun:
    """One scheduled run, each stage's summary logged and handed to ``report`` (the CLI prints it).

    Raises the rollup's error (the watermark stays at the last complete chunk), or the alerts'
    (after their summary was reported).  Last, ``keep_reports`` renders the org-wide month report
    of the months the run wrote (``shared.services.month_csv``); its failure is logged, never
    raised: the report is then rendered on its first read."""
    rolled: RollupResult | None = None
    failure: str | None = None
    try:
        try:
            rolled = rollup.run()
        except ChargebackError as exc:
            failure = f"rollup failed: {exc}"
            log.error("rollup failed, watermark unchanged past the last complete chunk: %s", exc)
            raise
        except Exception as exc:  # not one of ours: still a failed run the watch must see
            failure = f"rollup failed: {type(exc).__name__}"
            raise
        log.info("rollup done: %s", rolled.summary())
        report(rolled.summary())
        record_rollup_metrics(rolled)
        try:
            alerted = alerts().run(rolled.window)
            log.info("%s", alerted.summary())
            report(alerted.summary())
            alerted.raise_for_errors()
        except ChargebackError as exc:
            log.error("rollup done, but quota alerts failed: %s", exc)
            raise
        if keep_reports is not None and rolled.window is not None:
            keep_after(keep_reports, rolled.window.start, rolled.window.end, report)
        return ScheduledRun(rolled, alerted)
    finally:
        if watch is not None:
            watch_after(watch, rolled is not None, failure)


def keep_after(keep_reports: Callable[[list[datetime]], list[str]], start: datetime, end: datetime,
               report: Callable[[str], None]) -> None:
    """The month reports of ``[start, end)`` rendered and kept; a failure is logged only."""
    try:
        rendered = keep_reports([start, end - timedelta(microseconds=1)])
    except Exception:
        log.exception("the month reports of the run could not be kept (rendered on their first read)")
        return
    if rendered:
        log.info("month reports kept: %s", ", ".join(rendered))
        report(f"month reports kept: {', '.join(rendered)}")


def watch_after(watch: Callable[[], PipelineWatch], succeeded: bool, failure: str | None) -> None:
    """The watch after the run; its own failure is logged, never raised over the run's outcome."""
    try:
        checked = watch().after_run(succeeded, failure)
    except Exception:
        log.exception("pipeline watch failed")
        return
    if checked is not None and checked.lag is not None:
        log.info("watermark lag %.0f s%s", checked.lag.total_seconds(),
                 f"; lag incident {checked.event}" if checked.event else "")


def record_rollup_metrics(rolled: RollupResult) -> None:
    """The run's counts as metrics (the same numbers its summary reports)."""
    telemetry.count(telemetry.LOG_ROWS_READ, rolled.rows_read)
    telemetry.count(telemetry.USAGE_ROWS_WRITTEN, rolled.hourly_rows_written + rolled.derived_rows_written)
    telemetry.count(telemetry.REQUESTS_ROLLED_UP, rolled.requests)
    if rolled.requests:
        telemetry.gauge(telemetry.UNMETERED_SHARE, rolled.unmetered_requests / rolled.requests)
