"""Azure Functions entry point: registers the HTTP API and the timer blueprints, nothing else."""

import azure.functions as func

from shared.triggers import probe_timer, rollup_timer
from shared.triggers.http_api import asgi_app

app = func.AsgiFunctionApp(app=asgi_app, http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(rollup_timer.bp)
app.register_functions(probe_timer.bp)
