"""Timer ``rollup`` on ``%ROLLUP_SCHEDULE%``: one rollup run, logged; any failure fails the run."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.errors import ChargebackError
from shared.settings import Settings

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%ROLLUP_SCHEDULE%", run_on_startup=False, use_monitor=True)
def rollup(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.warning("rollup timer is past due; running now (the window catches up from the watermark)")
    from shared.composition import alert_service, rollup_service  # here, not at import: cold start

    settings = Settings.from_environment()
    try:
        result = rollup_service(settings).run()
    except ChargebackError as exc:
        # Re-raised so the invocation shows as failed; the watermark stays at the last complete chunk.
        log.error("rollup failed, watermark unchanged past the last complete chunk: %s", exc)
        raise
    log.info("rollup done: %s", result.summary())
    # Quota alerts run only after the rollup (and its watermark) is complete; their failure still
    # fails the invocation, visibly, without touching what the rollup wrote.
    try:
        alerts = alert_service(settings).run(result.window)
        alerts.raise_for_errors()
    except ChargebackError as exc:
        log.error("rollup done, but quota alerts failed: %s", exc)
        raise
    log.info("%s", alerts.summary())
