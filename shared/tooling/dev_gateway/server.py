"""``chargeback dev-gateway``: a local stand-in for APIM in front of Azure OpenAI.  Development only.

On loopback it accepts Azure OpenAI-style calls
(``/openai/deployments/{deployment}/chat/completions|completions|embeddings?api-version=...``), Anthropic
Messages calls (``/anthropic/v1/messages``, ``/v1/messages``) and Gemini calls
(``/v1beta/models/{model}:generateContent|streamGenerateContent``, and the Vertex AI path),
checks the subscription key (``api-key`` or ``Ocp-Apim-Subscription-Key``) against a local key list
(401 on a bad key, 429 + ``Retry-After`` past the key's tokens-per-minute limit), answers from a
deterministic model stub (OpenAI response shapes, ``usage`` computed from the prompt length, SSE
streaming with an optional final usage chunk), and writes what a real APIM would log into the
local DuckDB workspace: one ``ApiManagementGatewayLogs`` row per request and, for answered LLM
calls, ``ApiManagementGatewayLlmLog`` rows (long messages split into SequenceNumber chunks).

A fault switch (config ``faults``, :meth:`DevGateway.set_faults`, or ``PUT /_dev/faults``) injects
error statuses, delays (client timeouts) and slow streams.  This module is the server's lifecycle
and the state its request handlers share; nothing in production code imports it.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from shared.errors import ChargebackError
from shared.tooling.dev_gateway.config import Faults, GatewayConfig
from shared.tooling.dev_gateway.handler import handler_class
from shared.tooling.dev_gateway.log_rows import Exchange, gateway_row, llm_rows
from shared.tooling.dev_gateway.model_stub import PromptCache
from shared.tooling.dev_gateway.token_limiter import TokenLimiter
from shared.tooling.dev_gateway.workspace_writer import WorkspaceWriter

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # a client went away: nothing to report
            log.debug("dev gateway: connection from %s closed by the client", client_address)
            return
        log.exception("dev gateway: error while handling a request from %s", client_address)


class DevGateway:
    """The gateway on ``host:port`` (loopback only; port 0 = any free port) writing into ``workspace``."""

    def __init__(self, config: GatewayConfig, workspace: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        try:
            address = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host)
            loopback = address.is_loopback and address.version == 4
        except ValueError:
            loopback = False
        if not loopback:
            raise ChargebackError(f"the dev gateway only listens on an IPv4 loopback address (127.x.x.x), not {host}")
        host = "127.0.0.1" if host == "localhost" else host
        self.config = config
        self.writer = WorkspaceWriter(workspace)
        self.limiter = TokenLimiter()
        self.prompt_cache = PromptCache()
        self._faults = config.faults
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._in_flight = 0
        self._server = _Server((host, port), handler_class(self))
        self._thread: threading.Thread | None = None
        self._served = False

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> DevGateway:
        self._served = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="dev-gateway", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` (another thread) or Ctrl-C."""
        self._served = True
        self._server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self._stopping.set()
        if self._served:  # shutdown() waits for a serve loop, so only when one ran
            self._server.shutdown()
        self._server.server_close()
        self.wait_idle(5.0)
        self.writer.close()

    def __enter__(self) -> DevGateway:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- control ------------------------------------------------------------------------------------
    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults | None = None) -> None:
        self._faults = faults or Faults()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every request so far is answered and its log rows are in the workspace (True),
        or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout):
                return False
        return self.writer.flush(max(0.0, deadline - time.monotonic()))

    def pause(self, seconds: float) -> None:
        """Sleep, cut short when the gateway stops (fault delays must not hold up a shutdown)."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def request_started(self) -> None:
        with self._idle:
            self._in_flight += 1

    def request_finished(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def log_exchange(self, ex: Exchange) -> None:
        """Queue the request's log rows for the workspace."""
        self.writer.write([gateway_row(ex, self.config)], llm_rows(ex, self.config))
