"""The dev gateway's HTTP side: one handler per request, as APIM would treat it.

A call to ``/openai/deployments/{deployment}/chat/completions|completions|embeddings`` is routed,
its subscription key checked (``api-key`` or ``Ocp-Apim-Subscription-Key``; 401 when unknown),
its tokens checked against the key's limit (429 + ``Retry-After``), injected faults applied, and
then answered by the model stub, streamed or not.  Anthropic Messages and Gemini calls go the same way
through :mod:`.other_apis`.  Whatever happened is recorded in an
:class:`Exchange` for the log rows.  ``/_dev/health``, ``/_dev/config`` and ``PUT /_dev/faults``
are the gateway's own admin routes.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from shared.tooling.dev_gateway import other_apis
from shared.tooling.dev_gateway.config import Faults, KeyConfig
from shared.tooling.dev_gateway.log_rows import Exchange
from shared.tooling.dev_gateway.model_stub import Answer, answer, read_prompt
from shared.tooling.dev_gateway.openai_responses import answered_tier, completion_body, embeddings_body, sse_events
from shared.tooling.dev_gateway.ports import DevGateway

log = logging.getLogger(__name__)

ROUTE = re.compile(r"^/openai/deployments/(?P<deployment>[^/?#]+)/(?P<kind>chat/completions|completions|embeddings)$")
# Anthropic Messages (Foundry's /anthropic/v1/messages, or api.anthropic.com's /v1/messages) and Gemini
# (Google AI's /v1beta/models/{model}:..., or Vertex AI's /v1/projects/{p}/locations/{l}/publishers/google/...).
ANTHROPIC_ROUTE = re.compile(r"^(?:/anthropic)?/v1/messages$")
GEMINI_ROUTE = re.compile(r"^/(?:v1beta|v1)/(?P<vertex>projects/[^/]+/locations/[^/]+/publishers/google/)?"
                          r"models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$")
OPERATIONS = {"chat/completions": "ChatCompletions_Create", "completions": "Completions_Create",
              "embeddings": "Embeddings_Create"}
APIM_401_MESSAGE = ("Access denied due to invalid subscription key. "
                    "Make sure to provide a valid key for an active subscription.")
BACKEND_ERRORS = {
    500: ("InternalServerError", "The server had an error while processing your request. Sorry about that!"),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "The service is temporarily unable to process your request. Please try again later."),
    504: ("GatewayTimeout", "The backend did not answer in time."),
}


def handler_class(gateway: DevGateway) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to ``gateway`` (the HTTP server makes one handler per request)."""

    class Handler(GatewayHandler):
        pass

    Handler.gateway = gateway
    return Handler


class GatewayHandler(BaseHTTPRequestHandler):
    gateway: DevGateway
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small SSE chunks go out at once (time to first token is measured)
    server_version = "chargeback-dev-gateway"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("dev gateway: " + format, *args)

    # -- admin ----------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        if self.path == "/_dev/health":
            self._plain_json(200, {"status": "ok", "faults": asdict(self.gateway.faults)})
        elif self.path == "/_dev/config":
            self._plain_json(200, {**self.gateway.config.to_dict(), "keys": "(hidden)"})
        else:
            self._plain_json(404, {"statusCode": 404, "message": "Resource not found"})

    def do_PUT(self) -> None:
        if self.path != "/_dev/faults":
            self._plain_json(404, {"statusCode": 404, "message": "Resource not found"})
            return
        try:
            faults = Faults.from_dict(json.loads(self._read_body() or b"{}"))
        except (ValueError, TypeError) as exc:
            self._plain_json(400, {"error": str(exc)})
            return
        self.gateway.set_faults(faults)
        self._plain_json(200, asdict(faults))

    def _plain_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    # -- the gateway ----------------------------------------------------------------------------------
    def do_POST(self) -> None:
        gw = self.gateway
        gw.request_started()
        try:
            ex = Exchange(when=datetime.now(UTC), started=time.perf_counter(), correlation=str(uuid.uuid4()),
                           method="POST", url=f"http://{self.headers.get('Host') or gw.url[7:]}{self.path}",
                           caller=str(self.client_address[0]), request_headers=self._logged_headers())
            body = self._read_body()
            ex.request_size = len(body)
            try:
                self._handle(ex, body)
            except (BrokenPipeError, ConnectionResetError) as exc:
                ex.error_reason, ex.error_source = "ClientConnectionFailure", "forward-request"
                ex.error_message = f"the client closed the connection: {type(exc).__name__}"
                self.close_connection = True
            try:
                gw.log_exchange(ex)
            except Exception:  # a logging failure must not kill the gateway thread
                log.exception("dev gateway: could not log request %s", ex.correlation)
        finally:
            gw.request_finished()

    def _logged_headers(self) -> dict[str, str]:
        cfg = self.gateway.config
        logged: dict[str, str] = {}
        for name in cfg.logged_headers:
            value = self.headers.get(name)
            if value is None:
                continue
            if name == cfg.probe_header and value.strip() != "1":
                continue  # probe-marker.xml removes any other value before it is logged
            logged[name] = "1" if name == cfg.probe_header else value
        return logged

    def _handle(self, ex: Exchange, body: bytes) -> None:
        gw = self.gateway
        cfg = gw.config
        split = urlsplit(self.path)
        match = ROUTE.match(split.path)
        if match is None and ANTHROPIC_ROUTE.match(split.path):
            other_apis.anthropic_messages(self, ex, body)
            return
        gemini = GEMINI_ROUTE.match(split.path)
        if match is None and gemini is not None:
            other_apis.gemini_generate(self, ex, body, gemini["model"], gemini["method"] == "streamGenerateContent",
                                       "sse" in parse_qs(split.query).get("alt", []), vertex=bool(gemini["vertex"]))
            return
        if match is None:
            ex.error_reason, ex.error_source = "OperationNotFound", "configuration"
            self.respond(ex, 404, {"statusCode": 404, "message": "Resource not found"})
            return
        ex.deployment, kind = match["deployment"], match["kind"]
        ex.operation = OPERATIONS[kind]
        found = self.check_key(ex)
        if found is None:
            return
        key, account = found
        api_version = (parse_qs(split.query).get("api-version") or [""])[0]
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as exc:
            self._backend_error(ex, 400, "invalid_request_error", f"could not parse the JSON body: {exc}")
            return
        prompt_tokens, prompt_text, messages = read_prompt(kind, request)
        if not self.within_token_limit(ex, key, account, prompt_tokens):
            return
        backend_started = time.perf_counter()
        faults = gw.faults if gw.faults.applies(ex.deployment) else Faults()
        gw.pause(faults.delay_seconds)
        model = cfg.deployments.get(ex.deployment)
        if faults.status is not None:
            code, message = BACKEND_ERRORS.get(faults.status, ("InjectedFault", "Fault injected by the dev gateway."))
            self._backend_error(ex, faults.status, code, message, backend_started)
            return
        if model is None:
            self._backend_error(ex, 404, "DeploymentNotFound",
                                "The API deployment for this resource does not exist.", backend_started)
            return
        stream = bool(request.get("stream"))
        if kind == "embeddings":
            if stream:
                self._backend_error(ex, 400, "invalid_request_error", "embeddings cannot be streamed",
                                    backend_started)
                return
            self._embeddings(ex, request, model, prompt_tokens, backend_started)
            gw.limiter.consume(key, prompt_tokens)
            ex.llm = {"model": model, "prompt_tokens": prompt_tokens, "completion_tokens": 0, "stream": False,
                      "api_version": api_version, "request_messages": messages, "response_messages": []}
            return
        max_tokens = request.get("max_completion_tokens", request.get("max_tokens"))
        reply = answer(prompt_text, prompt_tokens, max_tokens if isinstance(max_tokens, int) else None)
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        tier = answered_tier(kind, request)
        if stream:
            self._stream(ex, kind, model, reply, prompt_tokens, include_usage, faults, backend_started, tier)
        else:
            self._complete(ex, kind, model, reply, prompt_tokens, backend_started, tier)
        gw.limiter.consume(key, prompt_tokens + len(reply.words))
        ex.llm = {"model": model, "prompt_tokens": prompt_tokens, "completion_tokens": len(reply.words),
                  "stream": stream, "api_version": api_version, "request_messages": messages,
                  "response_messages": [{"role": "assistant", "content": reply.text}]}

    # -- what every API shares -----------------------------------------------------------------------
    def check_key(self, ex: Exchange, *provider_headers: str) -> tuple[str, KeyConfig] | None:
        """The caller's subscription key and its account (``api-key``, ``Ocp-Apim-Subscription-Key``, or the
        header the provider's own SDK sends it in), or None once APIM's 401 is sent."""
        names = ("Ocp-Apim-Subscription-Key", "api-key", *provider_headers)
        key = next((value for value in map(self.headers.get, names) if value), "")
        account = self.gateway.config.keys.get(key)
        if account is None:
            ex.error_reason = "SubscriptionKeyInvalid" if key else "SubscriptionKeyNotFound"
            ex.error_source, ex.error_message = "authentication", APIM_401_MESSAGE
            self.respond(ex, 401, {"statusCode": 401, "message": APIM_401_MESSAGE},
                         {"WWW-Authenticate": 'AzureApiManagementKey realm="dev-gateway"'})
            return None
        ex.subscription, ex.product = account.subscription, account.product
        return key, account

    def within_token_limit(self, ex: Exchange, key: str, account: KeyConfig, prompt_tokens: int) -> bool:
        """llm-token-limit: False once the 429 is sent."""
        remaining, retry_after = self.gateway.limiter.check(key, account.tpm, prompt_tokens)
        if retry_after is None:
            return True
        ex.error_reason, ex.error_source = "TokenLimitExceeded", "llm-token-limit"
        ex.error_message = f"Token limit is exceeded. Try again in {retry_after} seconds."
        self.respond(ex, 429, {"statusCode": 429, "message": ex.error_message},
                     {"Retry-After": str(retry_after), "x-ratelimit-remaining-tokens": str(remaining)})
        return False

    # -- responses ------------------------------------------------------------------------------------
    def _common_headers(self, ex: Exchange) -> dict[str, str]:
        return {"apim-request-id": ex.correlation, "x-request-id": ex.correlation,
                "x-ms-region": self.gateway.config.region}

    def respond(self, ex: Exchange, status: int, body: Any, headers: Mapping[str, str] | None = None,
                indent: int | None = None) -> None:
        data = json.dumps(body, indent=indent).encode("utf-8")
        ex.status = status
        ex.response_body = data
        self.send_response(status)
        for name, value in {**self._common_headers(ex), **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        sent = time.perf_counter()
        self.wfile.write(data)
        self.wfile.flush()
        ex.client_ms = (time.perf_counter() - sent) * 1000
        ex.response_size = len(data)

    def _backend_error(self, ex: Exchange, status: int, code: str, message: str,
                       backend_started: float | None = None) -> None:
        ex.backend_status = status
        ex.backend_ms = (time.perf_counter() - (backend_started or time.perf_counter())) * 1000
        ex.error_reason, ex.error_source, ex.error_message = "BackendError", "backend", message
        self.respond(ex, status, {"error": {"code": code, "message": message, "type": None, "param": None}})

    def _complete(self, ex: Exchange, kind: str, model: str, reply: Answer, prompt_tokens: int,
                  backend_started: float, service_tier: str | None = None) -> None:
        body = completion_body(kind, ex.correlation, model, reply, prompt_tokens, service_tier)
        ex.backend_status = 200
        ex.backend_ms = (time.perf_counter() - backend_started) * 1000
        self.respond(ex, 200, body)

    def _embeddings(self, ex: Exchange, request: dict[str, Any], model: str, prompt_tokens: int,
                    backend_started: float) -> None:
        body = embeddings_body(request, model, prompt_tokens, self.gateway.config.embedding_dimensions)
        ex.backend_status = 200
        ex.backend_ms = (time.perf_counter() - backend_started) * 1000
        self.respond(ex, 200, body)

    def _stream(self, ex: Exchange, kind: str, model: str, reply: Answer, prompt_tokens: int,
                include_usage: bool, faults: Faults, backend_started: float,
                service_tier: str | None = None) -> None:
        events = sse_events(kind, ex.correlation, model, reply, prompt_tokens, include_usage, service_tier)
        self.stream(ex, events, "text/event-stream; charset=utf-8", faults, backend_started)

    def stream(self, ex: Exchange, events: Iterable[tuple[str, int | None]], content_type: str, faults: Faults,
               backend_started: float) -> None:
        """A 200 sent piece by piece (chunked), each answer token after the fault's delay; the whole
        stream is what the body log keeps."""
        ex.status = ex.backend_status = 200
        self.send_response(200)
        for name, value in self._common_headers(ex).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent: list[bytes] = []
        for event, token_index in events:
            if token_index is not None:
                self.gateway.pause(faults.first_token_delay_seconds if token_index == 0 else
                                    faults.chunk_delay_seconds)
            data = event.encode("utf-8")
            sent.append(data)
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        ex.backend_ms = (time.perf_counter() - backend_started) * 1000
        ex.response_body = b"".join(sent)
        ex.response_size = len(ex.response_body)
