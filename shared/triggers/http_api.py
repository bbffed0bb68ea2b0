"""The report API as an ASGI app; ``function_app`` hands it to ``func.AsgiFunctionApp``."""

from __future__ import annotations

from shared.api.app import AppContext, create_app
from shared.settings import Settings

asgi_app = create_app(AppContext(Settings.from_environment))
