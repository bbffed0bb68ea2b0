"""The report API as an ASGI app; ``function_app`` hands it to ``func.AsgiFunctionApp``.

The FastAPI app is built on its first ASGI call (a request, or the lifespan startup the Functions
middleware sends before it): importing FastAPI and pydantic is ~0.3 s, most of ``function_app``'s
import time, and an instance started for a timer never needs them (bench: ``cold-start``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]


class LazyAsgiApp:
    def __init__(self) -> None:
        self._app: Any = None

    @property
    def app(self) -> Any:
        """The FastAPI app, built once (two racing first calls build it twice; one is kept)."""
        if self._app is None:
            from shared.api.app import AppContext, create_app
            from shared.settings import Settings

            self._app = create_app(AppContext(Settings.from_environment))
        return self._app

    async def __call__(self, scope: Message, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        await self.app(scope, receive, send)


asgi_app = LazyAsgiApp()
