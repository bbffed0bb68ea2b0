"""The scheduled pipeline, in one place for the timer and ``chargeback rollup``: the rollup, then
quota alerts and enforcement over the window it completed.

Alerts run only once the rollup (and its watermark) is complete, so they always see finished
hours; their failure still fails the run, visibly, without touching what the rollup wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from shared.errors import ChargebackError
from shared.services.alerts import AlertRunResult, AlertService
from shared.services.rollup import RollupResult, RollupService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduledRun:
    rollup: RollupResult
    alerts: AlertRunResult


def scheduled_run(rollup: RollupService, alerts: Callable[[], AlertService],
                  report: Callable[[str], None] = lambda _: None) -> ScheduledRun:
    """One scheduled run, each stage's summary logged and handed to ``report`` (the CLI prints it).

    Raises the rollup's error (the watermark stays at the last complete chunk), or the alerts'
    (after their summary was reported)."""
    try:
        rolled = rollup.run()
    except ChargebackError as exc:
        log.error("rollup failed, watermark unchanged past the last complete chunk: %s", exc)
        raise
    log.info("rollup done: %s", rolled.summary())
    report(rolled.summary())
    try:
        alerted = alerts().run(rolled.window)
        log.info("%s", alerted.summary())
        report(alerted.summary())
        alerted.raise_for_errors()
    except ChargebackError as exc:
        log.error("rollup done, but quota alerts failed: %s", exc)
        raise
    return ScheduledRun(rolled, alerted)
