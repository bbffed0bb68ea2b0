"""Timer ``rollup`` on ``%ROLLUP_SCHEDULE%``: one scheduled run (rollup, alerts, then the pipeline's
watch: status, gauges, lag alert), logged; any failure fails the invocation."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.settings import Settings
from shared.triggers.invocation import DIRECT_CALL, invocation

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%ROLLUP_SCHEDULE%", run_on_startup=False, use_monitor=True)
def rollup(timer: func.TimerRequest, context: func.Context = DIRECT_CALL) -> None:
    settings = Settings.from_environment()
    with invocation(context, "rollup", settings):
        if timer.past_due:
            log.warning("rollup timer is past due; running now (the window catches up from the watermark)")
        from shared.composition import (  # not at import: cold start
            alert_service,
            month_report_keeper,
            pipeline_watch,
            rollup_service,
        )
        from shared.services.scheduled_run import scheduled_run, watch_after

        try:
            service = rollup_service(settings)
        except Exception as exc:  # e.g. a setting: still a failed run, so the lag is still watched
            log.error("rollup could not start: %s", exc)
            watch_after(lambda: pipeline_watch(settings), False, f"rollup could not start: {exc}")
            raise
        # Errors are logged by scheduled_run and re-raised so the invocation shows as failed.
        scheduled_run(service, lambda: alert_service(settings), watch=lambda: pipeline_watch(settings),
                      keep_reports=month_report_keeper(settings))
