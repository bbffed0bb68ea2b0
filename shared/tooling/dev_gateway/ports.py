"""What the dev gateway's request-handling modules need of each other, as protocols: the gateway
(``server.DevGateway``) a handler reports to, and the handler (``handler.GatewayHandler``) the
other providers' endpoints (:mod:`.other_apis`) answer through.  Protocols, so no module imports
the one that imports it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from shared.tooling.dev_gateway.config import Faults, GatewayConfig, KeyConfig
from shared.tooling.dev_gateway.log_rows import Exchange
from shared.tooling.dev_gateway.model_stub import PromptCache
from shared.tooling.dev_gateway.token_limiter import TokenLimiter


class DevGateway(Protocol):
    """What a request handler needs of the gateway (``server.DevGateway``): its config, limiter and
    faults, and the hooks it reports each request to.  A protocol, so this module does not import
    the server that imports it."""

    config: GatewayConfig
    limiter: TokenLimiter
    prompt_cache: PromptCache

    @property
    def url(self) -> str: ...

    @property
    def faults(self) -> Faults: ...

    def set_faults(self, faults: Faults | None = None) -> None: ...

    def pause(self, seconds: float) -> None: ...

    def request_started(self) -> None: ...

    def request_finished(self) -> None: ...

    def log_exchange(self, ex: Exchange) -> None: ...


class ApiHandler(Protocol):
    """One request being answered (``handler.GatewayHandler``)."""

    gateway: DevGateway

    def check_key(self, ex: Exchange, *provider_headers: str) -> tuple[str, KeyConfig] | None: ...

    def within_token_limit(self, ex: Exchange, key: str, account: KeyConfig, prompt_tokens: int) -> bool: ...

    def respond(self, ex: Exchange, status: int, body: Any, headers: Mapping[str, str] | None = None,
                indent: int | None = None) -> None: ...

    def stream(self, ex: Exchange, events: Iterable[tuple[str, int | None]], content_type: str, faults: Faults,
               backend_started: float) -> None: ...
