"""Timer ``rollup`` on ``%ROLLUP_SCHEDULE%``: one scheduled run (rollup, then alerts), logged; any
failure fails the invocation."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.settings import Settings

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%ROLLUP_SCHEDULE%", run_on_startup=False, use_monitor=True)
def rollup(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.warning("rollup timer is past due; running now (the window catches up from the watermark)")
    from shared.composition import alert_service, rollup_service  # here, not at import: cold start
    from shared.services.scheduled_run import scheduled_run

    settings = Settings.from_environment()
    # Errors are logged by scheduled_run and re-raised so the invocation shows as failed.
    scheduled_run(rollup_service(settings), lambda: alert_service(settings))
