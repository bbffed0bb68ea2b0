"""Entra sign-in in front of the whole report API (``API_AUTH=entra``).

App Service Authentication (Entra ID) signs callers in and passes their principal in the
``X-MS-CLIENT-PRINCIPAL*`` headers; the Functions host then asks for no function key (a browser
has none to give).  This ASGI wrapper makes the app itself refuse (401) any request without a
signed-in principal, so nothing is reachable on the key the host no longer checks — whatever route
is added later.  Open: ``/api/health`` (monitors) and the dashboard's page and assets, which hold
no data (the page's script sends the browser to sign in when the API answers 401); App Service
Authentication leaves exactly these paths out too (``infra/app/api-auth.bicep``).  The data routes
check the principal again and scope it by its grant (:mod:`shared.api.auth`).

No FastAPI import here: the Functions entry point wraps the lazily built app with this.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from shared.errors import NotAuthorizedError, SettingError
from shared.settings import Settings

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Message, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

DASHBOARD_ASSETS = ("dashboard.css", "dashboard.js", "chart.umd.min.js")  # shared.api.dashboard_routes.ASSETS
OPEN_PATHS = frozenset({"/api/health", "/api/dashboard",
                        *(f"/api/dashboard/assets/{name}" for name in DASHBOARD_ASSETS)})


class EntraSignIn:
    """Wraps an ASGI app: every HTTP request but :data:`OPEN_PATHS` needs a signed-in principal."""

    def __init__(self, app: Asgi, settings_factory: Callable[[], Settings]) -> None:
        self._app = app
        self._settings_factory = settings_factory
        self._settings: Settings | None = None

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self._app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        try:
            from shared.api.auth import signed_in_principal  # here: the access rules load with the first request

            if self._settings is None:
                self._settings = self._settings_factory()
            signed_in_principal(self._settings, headers)
        except NotAuthorizedError as exc:
            await _refuse(send, 401, str(exc))
            return
        except SettingError as exc:
            log.error("request %s refused: %s", scope["path"], exc)
            await _refuse(send, 500, "the service is misconfigured; see the function log")
            return
        await self._app(scope, receive, send)


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": {"message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
