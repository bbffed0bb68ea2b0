"""Azure Functions entry point: registers the HTTP API and the timer blueprints, nothing else."""

import os

import azure.functions as func

from shared.errors import SettingError
from shared.settings import Settings
from shared.triggers import probe_timer, rollup_timer, sync_timers
from shared.triggers.http_api import asgi_app


def _entra_sign_in() -> bool:
    """``API_AUTH=entra``: App Service Authentication signs callers in, so the host must not also ask
    the browser for a function key (the app requires the principal instead: shared.api.sign_in)."""
    try:
        return Settings.from_environment().api_auth == "entra"
    except SettingError:
        return False  # a malformed setting keeps the function key: closed, and the app reports the setting


if _entra_sign_in():
    from shared.api.sign_in import EntraSignIn

    app = func.AsgiFunctionApp(app=EntraSignIn(asgi_app, Settings.from_environment),
                               http_auth_level=func.AuthLevel.ANONYMOUS)
else:
    app = func.AsgiFunctionApp(app=asgi_app, http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(rollup_timer.bp)
app.register_functions(probe_timer.bp)
# Off unless configured: registered only when DEPLOYMENT_SYNC_SCHEDULE / PRICE_SYNC_SCHEDULE is set.
for sync_timer in sync_timers.configured(os.environ):
    app.register_functions(sync_timer)
