"""Timers ``deployment_sync`` (``%DEPLOYMENT_SYNC_SCHEDULE%``) and ``price_sync`` (``%PRICE_SYNC_SCHEDULE%``).

Both are off unless configured: a timer is only *registered* when its schedule setting is set
(:func:`configured`).  The host resolves ``%SETTING%`` in a binding when it indexes the function, and
an unresolvable one is an indexing error, so an empty schedule cannot stand for "off" in the binding
itself; the Python worker indexes ``function_app`` with the app settings in its environment (and an
app setting change restarts the app), so registering only what is configured is exact.  A
registered timer can also be switched off without a redeploy by the host's own
``AzureWebJobs.<function>.Disabled = true`` app setting.

Each run logs what changed; a failed account, feed page or storage call fails the invocation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

import azure.functions as func

from shared.settings import Settings

log = logging.getLogger(__name__)
deployment_sync_bp = func.Blueprint()
price_sync_bp = func.Blueprint()


@deployment_sync_bp.timer_trigger(arg_name="timer", schedule="%DEPLOYMENT_SYNC_SCHEDULE%", run_on_startup=False,
                                  use_monitor=True)
def deployment_sync(timer: func.TimerRequest) -> None:
    settings = Settings.from_environment()
    if not settings.aoai_account_ids:
        log.warning("deployment sync is off: AOAI_ACCOUNT_IDS is empty")
        return
    from shared.composition import deployment_sync_service  # here, not at import: cold start
    from shared.errors import ChargebackError

    report = deployment_sync_service(settings).sync(settings.aoai_account_ids)
    log.info("deployment sync: %d new version(s), %d unchanged, %d unknown SKU(s), %d conflict(s)",
             len(report.added), report.unchanged, len(report.unknown_skus), len(report.conflicts))
    if report.failed_accounts:
        raise ChargebackError(f"deployment sync: {len(report.failed_accounts)} account(s) failed: "
                              + "; ".join(report.failed_accounts.values()))


@price_sync_bp.timer_trigger(arg_name="timer", schedule="%PRICE_SYNC_SCHEDULE%", run_on_startup=False,
                             use_monitor=True)
def price_sync(timer: func.TimerRequest) -> None:
    settings = Settings.from_environment()
    from shared.composition import meter_price_store, retail_prices_client  # here, not at import: cold start
    from shared.services.price_sync import sync_prices

    result = sync_prices(retail_prices_client(settings), meter_price_store(settings), settings.price_sync_region,
                         settings.price_sync_currency.upper(), datetime.now(UTC))
    for failure in result.failures:
        log.warning("price sync: meter %s %r not parsed: %s", failure.meter_id, failure.meter_name, failure.reason)
    log.info("price sync: %d new price row(s), %d unchanged, %d unparsed; generation %s", result.added,
             result.unchanged, len(result.failures), result.generation)


def configured(environ: Mapping[str, str]) -> list[func.Blueprint]:
    """The sync timers whose schedule setting is set (non-blank) in ``environ``."""
    chosen = []
    if (environ.get("DEPLOYMENT_SYNC_SCHEDULE") or "").strip():
        chosen.append(deployment_sync_bp)
    if (environ.get("PRICE_SYNC_SCHEDULE") or "").strip():
        chosen.append(price_sync_bp)
    return chosen
