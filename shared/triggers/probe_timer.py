"""Timer ``probe`` on ``%PROBE_SCHEDULE%``: one synthetic probe run through APIM, logged.

Off (a log line, no failure) while PROBE_DEPLOYMENTS is empty.  A failed probe call is a
measurement, not a failed invocation; storage or setting errors fail the invocation.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared.errors import ChargebackError
from shared.settings import Settings
from shared.triggers.invocation import DIRECT_CALL, invocation

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%PROBE_SCHEDULE%", run_on_startup=False, use_monitor=True)
def probe(timer: func.TimerRequest, context: func.Context = DIRECT_CALL) -> None:
    settings = Settings.from_environment()
    if not settings.probe_deployments:
        log.info("probe is off: PROBE_DEPLOYMENTS is empty")
        return
    with invocation(context, "probe", settings):
        if timer.past_due:
            log.warning("probe timer is past due; probing now")
        from shared.composition import probe_service  # here, not at import: cold start

        service = probe_service(settings)
        try:
            result = service.run()
        except ChargebackError as exc:
            log.error("probe run failed: %s", exc)
            raise
        finally:
            service.close()
        log.info("probe done: %s", result.summary())
