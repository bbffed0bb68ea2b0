"""``chargeback dev-gateway``: a local stand-in for APIM in front of Azure OpenAI.  Development only.

On loopback it accepts Azure OpenAI-style calls
(``/openai/deployments/{deployment}/chat/completions|completions|embeddings?api-version=...``),
checks the subscription key (``api-key`` or ``Ocp-Apim-Subscription-Key``) against a local key list
(401 on a bad key, 429 + ``Retry-After`` past the key's tokens-per-minute limit), answers from a
deterministic model stub (OpenAI response shapes, ``usage`` computed from the prompt length, SSE
streaming with an optional final usage chunk), and writes what a real APIM would log into the
local DuckDB workspace: one ``ApiManagementGatewayLogs`` row per request and, for answered LLM
calls, ``ApiManagementGatewayLlmLog`` rows (long messages split into SequenceNumber chunks).

A fault switch (config ``faults``, :meth:`DevGateway.set_faults`, or ``PUT /_dev/faults``) injects
error statuses, delays (client timeouts) and slow streams.  Nothing in production code imports
this module.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import math
import random
import re
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from shared.adapters import local_workspace
from shared.errors import ChargebackError
from shared.tooling.demo import demo_data

log = logging.getLogger(__name__)

ROUTE = re.compile(r"^/openai/deployments/(?P<deployment>[^/?#]+)/(?P<kind>chat/completions|completions|embeddings)$")
OPERATIONS = {"chat/completions": "ChatCompletions_Create", "completions": "Completions_Create",
              "embeddings": "Embeddings_Create"}
RESOURCE_ID = ("/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-LOCAL/PROVIDERS/"
               "MICROSOFT.APIMANAGEMENT/SERVICE/APIM-DEV-GATEWAY")
BACKEND = "https://local-model-stub.openai.azure.com"
TPM_WINDOW_SECONDS = 60.0
MAX_COMPLETION_TOKENS = 4096
VOCABULARY = ("the", "gateway", "token", "model", "usage", "report", "team", "cost", "quota", "answer", "request",
              "stream", "latency", "region", "subscription", "product", "deployment", "hour", "day", "month",
              "budget", "limit", "log", "query", "table", "row", "chunk", "probe", "alert", "health", "local",
              "stub", "prompt", "completion", "embedding", "vector", "context", "window", "batch", "retry")
APIM_401_MESSAGE = ("Access denied due to invalid subscription key. "
                    "Make sure to provide a valid key for an active subscription.")
BACKEND_ERRORS = {
    500: ("InternalServerError", "The server had an error while processing your request. Sorry about that!"),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "The service is temporarily unable to process your request. Please try again later."),
    504: ("GatewayTimeout", "The backend did not answer in time."),
}

# The demo's keys: three teams (the sandbox key has a small TPM limit, so the demo shows 429s) and
# the synthetic probe's own subscription (PROBE_SUBSCRIPTION_KEY / PROBE_SUBSCRIPTION_ID locally).
DEFAULT_KEYS: dict[str, dict[str, Any]] = {
    "dev-key-team-search-0001": {"subscription": "team-search", "product": "ai-premium", "tpm": 200000},
    "dev-key-team-support-bot-0002": {"subscription": "team-support-bot", "product": "ai-standard", "tpm": 50000},
    "dev-key-sandbox-0003": {"subscription": "sandbox", "product": "ai-trial", "tpm": 1500},
    "dev-key-chargeback-probe-0004": {"subscription": "chargeback-probe", "product": "monitoring", "tpm": 100000},
}
PROBE_KEY = "dev-key-chargeback-probe-0004"
PROBE_SUBSCRIPTION = "chargeback-probe"


# ---------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyConfig:
    subscription: str
    product: str
    tpm: int  # tokens per minute (prompt + completion), sliding 60-second window


@dataclass(frozen=True)
class Faults:
    status: int | None = None  # answer matching requests with this status from the "backend" (500, 503, ...)
    delay_seconds: float = 0.0  # wait before answering (provokes client timeouts)
    first_token_delay_seconds: float = 0.0  # streams: wait before the first content chunk
    chunk_delay_seconds: float = 0.0  # streams: wait before every further content chunk
    deployments: tuple[str, ...] = ()  # only these deployments; empty = all

    def applies(self, deployment: str) -> bool:
        return not self.deployments or deployment in self.deployments

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        status = data.get("status")
        if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError(f"fault status must be an HTTP error status, got {status!r}")
        return cls(status=status, delay_seconds=float(data.get("delay_seconds", 0)),
                   first_token_delay_seconds=float(data.get("first_token_delay_seconds", 0)),
                   chunk_delay_seconds=float(data.get("chunk_delay_seconds", 0)),
                   deployments=tuple(data.get("deployments", ())))


@dataclass(frozen=True)
class GatewayConfig:
    keys: dict[str, KeyConfig]
    deployments: dict[str, str] = field(default_factory=lambda: {d[0]: d[1] for d in demo_data.DEPLOYMENTS})
    body_bytes: int = 8192  # response bodies logged (APIM's maximum is 8192); 0 = body logging off
    llm_messages: bool = True  # log prompt/completion text in the LLM log (token counts are logged either way)
    llm_chunk_bytes: int = 32768  # messages longer than this are split over several SequenceNumber rows
    region: str = "Local Dev"
    probe_header: str = "x-chargeback-probe"  # normalised like infra/policies/probe-marker.xml
    logged_headers: tuple[str, ...] = ("x-chargeback-probe",)  # what the APIM diagnostic logs
    embedding_dimensions: int = 1536
    faults: Faults = Faults()

    @classmethod
    def default(cls) -> GatewayConfig:
        return cls.from_dict({"keys": DEFAULT_KEYS})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GatewayConfig:
        keys = {str(k): KeyConfig(str(v["subscription"]), str(v.get("product", "")), int(v["tpm"]))
                for k, v in dict(data.get("keys", {})).items()}
        if not keys:
            raise ValueError("the dev gateway config needs at least one key in 'keys'")
        base = cls(keys=keys)
        body_bytes = int(data.get("body_bytes", base.body_bytes))
        if not 0 <= body_bytes <= 8192:
            raise ValueError(f"body_bytes must be between 0 and 8192 (APIM's maximum), got {body_bytes}")
        probe_header = str(data.get("probe_header", base.probe_header)).lower()
        return replace(
            base,
            deployments=dict(data.get("deployments", base.deployments)),
            body_bytes=body_bytes,
            llm_messages=bool(data.get("llm_messages", base.llm_messages)),
            llm_chunk_bytes=max(64, int(data.get("llm_chunk_bytes", base.llm_chunk_bytes))),
            region=str(data.get("region", base.region)),
            probe_header=probe_header,
            logged_headers=tuple(h.lower() for h in data.get("logged_headers", (probe_header,))),
            embedding_dimensions=int(data.get("embedding_dimensions", base.embedding_dimensions)),
            faults=Faults.from_dict(data.get("faults", {})),
        )

    @classmethod
    def load(cls, path: Path) -> GatewayConfig:
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ChargebackError(f"dev gateway config {path}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["logged_headers"] = list(self.logged_headers)
        data["faults"]["deployments"] = list(self.faults.deployments)
        return data


# ---------------------------------------------------------------------------------------------------
# Deterministic model stub
# ---------------------------------------------------------------------------------------------------
def text_tokens(text: str) -> int:
    """About four bytes per token (what the OpenAI tokenizers average on English text)."""
    return math.ceil(len(text.encode("utf-8")) / 4)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only text parts count here
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def chat_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """OpenAI's chat accounting: 3 tokens per message + its text (+1 with a name) + 3 to prime the reply."""
    total = 3
    for message in messages:
        total += 3 + text_tokens(_content_text(message.get("content"))) + text_tokens(str(message.get("role", "")))
        if message.get("name"):
            total += 1 + text_tokens(str(message["name"]))
    return total


@dataclass(frozen=True)
class Answer:
    words: tuple[str, ...]  # one token each; streamed one per chunk
    finish_reason: str

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def pieces(self) -> list[str]:
        return [w if i == 0 else " " + w for i, w in enumerate(self.words)]


def answer(prompt_text: str, prompt_tokens: int, max_tokens: int | None) -> Answer:
    """The same prompt always gets the same answer; longer prompts get longer answers."""
    digest = hashlib.sha256(prompt_text.encode("utf-8")).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    natural = min(MAX_COMPLETION_TOKENS, 8 + digest[8] % 24 + prompt_tokens // 3)
    count = natural if max_tokens is None else max(0, min(natural, max_tokens))
    words = tuple(rng.choice(VOCABULARY) for _ in range(count))
    return Answer(words, "length" if count < natural else "stop")


def embedding(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    vector = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [round(v / norm, 6) for v in vector]


def usage_json(prompt: int, completion: int | None) -> dict[str, Any]:
    if completion is None:  # embeddings
        return {"prompt_tokens": prompt, "total_tokens": prompt}
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


# ---------------------------------------------------------------------------------------------------
# Tokens-per-minute limit (APIM llm-token-limit, per subscription key)
# ---------------------------------------------------------------------------------------------------
class TokenLimiter:
    def __init__(self, window: float = TPM_WINDOW_SECONDS) -> None:
        self._window = window
        self._used: dict[str, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def _expire(self, key: str, now: float) -> deque[tuple[float, int]]:
        entries = self._used.setdefault(key, deque())
        while entries and entries[0][0] <= now - self._window:
            entries.popleft()
        return entries

    def check(self, key: str, limit: int, estimate: int) -> tuple[int, int | None]:
        """(tokens remaining, None) when ``estimate`` more tokens fit, else (remaining, Retry-After seconds)."""
        now = time.monotonic()
        with self._lock:
            entries = self._expire(key, now)
            used = sum(n for _, n in entries)
            remaining = max(0, limit - used)
            if used + estimate <= limit:
                return remaining, None
            needed, freed = used + estimate - limit, 0
            for at, tokens in entries:
                freed += tokens
                if freed >= needed:
                    return remaining, max(1, math.ceil(at + self._window - now))
            return remaining, math.ceil(self._window)  # bigger than the limit on its own

    def consume(self, key: str, tokens: int) -> None:
        with self._lock:
            self._expire(key, time.monotonic()).append((time.monotonic(), tokens))


# ---------------------------------------------------------------------------------------------------
# Workspace writer: DuckDB allows one writing process, so open, write, close per request
# ---------------------------------------------------------------------------------------------------
class WorkspaceWriter:
    """Log rows go to a background thread that writes them in batches (open, insert, commit, close),
    so a request never waits for DuckDB.  While another process holds the write lock the rows stay
    queued and the write is retried."""

    RETRY_SECONDS = 0.5

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows_written = 0
        self._cond = threading.Condition()
        self._gateway: list[dict[str, Any]] = []
        self._llm: list[dict[str, Any]] = []
        self._busy = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="dev-gateway-writer", daemon=True)
        self._thread.start()

    def write(self, gateway_rows: list[dict[str, Any]], llm_rows: list[dict[str, Any]]) -> None:
        with self._cond:
            self._gateway.extend(gateway_rows)
            self._llm.extend(llm_rows)
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._gateway) + len(self._llm)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row so far is in the workspace (True) or ``timeout`` passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._gateway or self._llm or self._busy), timeout)

    def close(self, timeout: float = 10.0) -> None:
        if not self.flush(timeout):
            log.error("dev gateway: %d log rows could not be written to %s (still locked?)", self.pending, self.path)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._gateway or self._llm) or self._closed)
                if self._closed:
                    return
                gateway, llm = self._gateway, self._llm
                self._gateway, self._llm = [], []
                self._busy = True
            try:
                self._write(gateway, llm)
            except Exception as exc:  # LogSourceError (locked) or anything else: keep the rows, retry
                log.warning("dev gateway: %d log rows not written yet, retrying: %s", len(gateway) + len(llm), exc)
                with self._cond:
                    self._gateway[:0], self._llm[:0] = gateway, llm
                    self._cond.wait(self.RETRY_SECONDS)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _write(self, gateway: list[dict[str, Any]], llm: list[dict[str, Any]]) -> None:
        con = local_workspace.connect(self.path, lock_wait=2.0)
        try:
            local_workspace.create_tables(con)
            con.execute("BEGIN TRANSACTION")
            written = local_workspace.insert_rows(con, "ApiManagementGatewayLogs", gateway)
            written += local_workspace.insert_rows(con, "ApiManagementGatewayLlmLog", llm)
            con.execute("COMMIT")
        finally:
            con.close()
        self.rows_written += written


def truncate_body(body: bytes, limit: int) -> str | None:
    """What APIM logs of a body: at most ``limit`` bytes (None when body logging is off)."""
    if limit <= 0:
        return None
    return body[:limit].decode("utf-8", errors="ignore")


def split_messages(messages: list[dict[str, Any]], limit: int) -> list[list[dict[str, Any]]]:
    """Messages cut into pieces of at most ``limit`` content bytes each, in order (one piece per LLM-log row)."""
    pieces: list[list[dict[str, Any]]] = [[]]
    size = 0
    for message in messages:
        data = _content_text(message.get("content")).encode("utf-8")
        pos = 0
        while True:
            if size >= limit:
                pieces.append([])
                size = 0
            part = data[pos:pos + limit - size].decode("utf-8", errors="ignore")
            taken = len(part.encode("utf-8"))
            if taken == 0 and pos < len(data):  # a multi-byte character does not fit: next piece
                size = limit
                continue
            pieces[-1].append({"role": str(message.get("role", "")), "content": part})
            size += taken
            pos += taken
            if pos >= len(data):
                break
    return pieces


# ---------------------------------------------------------------------------------------------------
# The HTTP side
# ---------------------------------------------------------------------------------------------------
@dataclass
class _Exchange:
    """What one request did, for its log rows."""

    when: datetime
    started: float
    correlation: str
    method: str
    url: str
    caller: str
    request_headers: dict[str, str]
    deployment: str | None = None
    operation: str = ""
    subscription: str = ""
    product: str = ""
    status: int = 0
    backend_status: int | None = None
    backend_ms: float | None = None
    response_body: bytes = b""
    request_size: int = 0
    response_size: int = 0
    client_ms: float = 0.0
    error_reason: str | None = None
    error_message: str | None = None
    error_source: str | None = None
    llm: dict[str, Any] | None = None  # model, tokens, messages of an answered LLM call


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
        self._faults = config.faults
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._in_flight = 0
        self._server = _Server((host, port), _handler_class(self))
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

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _begin(self) -> None:
        with self._idle:
            self._in_flight += 1

    def _end(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    # -- log rows -----------------------------------------------------------------------------------
    def _log(self, ex: _Exchange) -> None:
        total_ms = round((time.perf_counter() - ex.started) * 1000)
        cfg = self.config
        backend_url = None
        if ex.backend_status is not None:  # the request reached the (stub) backend
            frontend = urlsplit(ex.url)
            backend_url = BACKEND + frontend.path + (f"?{frontend.query}" if frontend.query else "")
        row: dict[str, Any] = {
            "TimeGenerated": ex.when, "CorrelationId": ex.correlation, "ApimSubscriptionId": ex.subscription,
            "ProductId": ex.product, "ApiId": "azure-openai" if ex.operation else "", "ApiRevision": "1",
            "OperationId": ex.operation, "OperationName": "Microsoft.ApiManagement/GatewayLogs",
            "Method": ex.method, "Url": ex.url, "BackendId": "local-model-stub" if backend_url else None,
            "BackendUrl": backend_url, "BackendMethod": ex.method if backend_url else None,
            "BackendProtocol": "HTTP/1.1" if backend_url else None, "ResponseCode": ex.status,
            "BackendResponseCode": ex.backend_status, "TotalTime": total_ms,
            "BackendTime": None if ex.backend_ms is None else round(ex.backend_ms),
            "ClientTime": round(ex.client_ms), "CallerIpAddress": ex.caller, "IsRequestSuccess": ex.status < 400,
            "Region": cfg.region, "Category": "GatewayLogs", "RequestSize": ex.request_size,
            "ResponseSize": ex.response_size, "ClientProtocol": "HTTP/1.1", "Cache": "none",
            "RequestHeaders": ex.request_headers,
            "ResponseBody": truncate_body(ex.response_body, cfg.body_bytes),
            "BackendResponseBody": truncate_body(ex.response_body, cfg.body_bytes) if backend_url else None,
            "LastErrorReason": ex.error_reason, "LastErrorMessage": ex.error_message,
            "LastErrorSource": ex.error_source, "Type": "ApiManagementGatewayLogs", "_ResourceId": RESOURCE_ID,
            "TenantId": demo_data.TENANT, "SourceSystem": "Azure",
        }
        self.writer.write([row], self._llm_rows(ex))

    def _llm_rows(self, ex: _Exchange) -> list[dict[str, Any]]:
        if ex.llm is None or ex.status >= 400:
            return []
        llm = ex.llm
        request_pieces: list[list[dict[str, Any]]] = [[]]
        response_pieces: list[list[dict[str, Any]]] = [[]]
        if self.config.llm_messages:
            request_pieces = split_messages(llm["request_messages"], self.config.llm_chunk_bytes)
            response_pieces = split_messages(llm["response_messages"], self.config.llm_chunk_bytes)
        rows = []
        for sequence in range(max(len(request_pieces), len(response_pieces))):
            rows.append({
                "TimeGenerated": ex.when, "CorrelationId": ex.correlation, "ModelName": llm["model"],
                "DeploymentName": ex.deployment, "PromptTokens": llm["prompt_tokens"],
                "CompletionTokens": llm["completion_tokens"],
                "TotalTokens": llm["prompt_tokens"] + llm["completion_tokens"],
                "IsStreamCompletion": llm["stream"], "SequenceNumber": sequence, "ApiVersion": llm["api_version"],
                "OperationName": "Microsoft.ApiManagement/GatewayLlmLogs", "Region": self.config.region,
                "RequestId": ex.correlation,
                "RequestMessages": (request_pieces[sequence] if sequence < len(request_pieces) else [])
                if self.config.llm_messages else None,
                "ResponseMessages": (response_pieces[sequence] if sequence < len(response_pieces) else [])
                if self.config.llm_messages else None,
                "Type": "ApiManagementGatewayLlmLog", "_ResourceId": RESOURCE_ID, "TenantId": demo_data.TENANT,
                "SourceSystem": "Azure",
            })
        return rows


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):  # a client went away: nothing to report
            log.debug("dev gateway: connection from %s closed by the client", client_address)
            return
        log.exception("dev gateway: error while handling a request from %s", client_address)


def _handler_class(gateway: DevGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(_GatewayHandler):
        pass

    Handler.gateway = gateway
    return Handler


class _GatewayHandler(BaseHTTPRequestHandler):
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
        gw._begin()
        try:
            ex = _Exchange(when=datetime.now(UTC), started=time.perf_counter(), correlation=str(uuid.uuid4()),
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
                gw._log(ex)
            except Exception:  # a logging failure must not kill the gateway thread
                log.exception("dev gateway: could not log request %s", ex.correlation)
        finally:
            gw._end()

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

    def _handle(self, ex: _Exchange, body: bytes) -> None:
        gw = self.gateway
        cfg = gw.config
        split = urlsplit(self.path)
        match = ROUTE.match(split.path)
        if match is None:
            ex.error_reason, ex.error_source = "OperationNotFound", "configuration"
            self._respond(ex, 404, {"statusCode": 404, "message": "Resource not found"})
            return
        ex.deployment, kind = match["deployment"], match["kind"]
        ex.operation = OPERATIONS[kind]
        key = self.headers.get("Ocp-Apim-Subscription-Key") or self.headers.get("api-key") or ""
        account = cfg.keys.get(key)
        if account is None:
            ex.error_reason = "SubscriptionKeyInvalid" if key else "SubscriptionKeyNotFound"
            ex.error_source, ex.error_message = "authentication", APIM_401_MESSAGE
            self._respond(ex, 401, {"statusCode": 401, "message": APIM_401_MESSAGE},
                          {"WWW-Authenticate": 'AzureApiManagementKey realm="dev-gateway"'})
            return
        ex.subscription, ex.product = account.subscription, account.product
        api_version = (parse_qs(split.query).get("api-version") or [""])[0]
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as exc:
            self._backend_error(ex, 400, "invalid_request_error", f"could not parse the JSON body: {exc}")
            return
        prompt_tokens, prompt_text, messages = _prompt(kind, request)
        remaining, retry_after = gw.limiter.check(key, account.tpm, prompt_tokens)
        if retry_after is not None:
            ex.error_reason, ex.error_source = "TokenLimitExceeded", "llm-token-limit"
            ex.error_message = f"Token limit is exceeded. Try again in {retry_after} seconds."
            self._respond(ex, 429, {"statusCode": 429, "message": ex.error_message},
                          {"Retry-After": str(retry_after), "x-ratelimit-remaining-tokens": str(remaining)})
            return
        backend_started = time.perf_counter()
        faults = gw.faults if gw.faults.applies(ex.deployment) else Faults()
        gw._sleep(faults.delay_seconds)
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
        if stream:
            self._stream(ex, kind, model, reply, prompt_tokens, include_usage, faults, backend_started)
        else:
            self._complete(ex, kind, model, reply, prompt_tokens, backend_started)
        gw.limiter.consume(key, prompt_tokens + len(reply.words))
        ex.llm = {"model": model, "prompt_tokens": prompt_tokens, "completion_tokens": len(reply.words),
                  "stream": stream, "api_version": api_version, "request_messages": messages,
                  "response_messages": [{"role": "assistant", "content": reply.text}]}

    # -- responses ------------------------------------------------------------------------------------
    def _common_headers(self, ex: _Exchange) -> dict[str, str]:
        return {"apim-request-id": ex.correlation, "x-request-id": ex.correlation,
                "x-ms-region": self.gateway.config.region}

    def _respond(self, ex: _Exchange, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
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

    def _backend_error(self, ex: _Exchange, status: int, code: str, message: str,
                       backend_started: float | None = None) -> None:
        ex.backend_status = status
        ex.backend_ms = (time.perf_counter() - (backend_started or time.perf_counter())) * 1000
        ex.error_reason, ex.error_source, ex.error_message = "BackendError", "backend", message
        self._respond(ex, status, {"error": {"code": code, "message": message, "type": None, "param": None}})

    def _complete(self, ex: _Exchange, kind: str, model: str, reply: Answer, prompt_tokens: int,
                  backend_started: float) -> None:
        created = int(time.time())
        if kind == "chat/completions":
            body: dict[str, Any] = {
                "id": f"chatcmpl-{ex.correlation.replace('-', '')[:24]}", "object": "chat.completion",
                "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text, "refusal": None},
                             "logprobs": None, "finish_reason": reply.finish_reason}],
                "usage": usage_json(prompt_tokens, len(reply.words)), "system_fingerprint": "fp_dev_gateway"}
        else:
            body = {"id": f"cmpl-{ex.correlation.replace('-', '')[:24]}", "object": "text_completion",
                    "created": created, "model": model,
                    "choices": [{"text": reply.text, "index": 0, "logprobs": None,
                                 "finish_reason": reply.finish_reason}],
                    "usage": usage_json(prompt_tokens, len(reply.words))}
        ex.backend_status = 200
        ex.backend_ms = (time.perf_counter() - backend_started) * 1000
        self._respond(ex, 200, body)

    def _embeddings(self, ex: _Exchange, request: dict[str, Any], model: str, prompt_tokens: int,
                    backend_started: float) -> None:
        inputs = request.get("input")
        items = inputs if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else [inputs]
        dimensions = int(request.get("dimensions") or self.gateway.config.embedding_dimensions)
        data = []
        for index, item in enumerate(items):
            vector = embedding(json.dumps(item), dimensions)
            value: Any = vector
            if request.get("encoding_format") == "base64":
                value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": value})
        body = {"object": "list", "data": data, "model": model, "usage": usage_json(prompt_tokens, None)}
        ex.backend_status = 200
        ex.backend_ms = (time.perf_counter() - backend_started) * 1000
        self._respond(ex, 200, body)

    def _stream(self, ex: _Exchange, kind: str, model: str, reply: Answer, prompt_tokens: int,
                include_usage: bool, faults: Faults, backend_started: float) -> None:
        ex.status = ex.backend_status = 200
        self.send_response(200)
        for name, value in self._common_headers(ex).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent: list[bytes] = []
        for event, token_index in _sse_events(ex, kind, model, reply, prompt_tokens, include_usage):
            if token_index is not None:
                self.gateway._sleep(faults.first_token_delay_seconds if token_index == 0 else
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


def _prompt(kind: str, request: dict[str, Any]) -> tuple[int, str, list[dict[str, Any]]]:
    """(prompt tokens, the text the answer is derived from, messages as the LLM log shows them)."""
    if kind == "chat/completions":
        messages = [m for m in request.get("messages") or [] if isinstance(m, dict)]
        shown = [{"role": str(m.get("role", "")), "content": _content_text(m.get("content"))} for m in messages]
        return chat_prompt_tokens(messages), json.dumps(shown), shown
    if kind == "completions":
        prompt = request.get("prompt", "")
        text = "".join(prompt) if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt) else str(prompt)
        return max(1, text_tokens(text)), text, [{"role": "user", "content": text}]
    inputs = request.get("input")
    items = inputs if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else [inputs]
    tokens = 0
    for item in items:
        if isinstance(item, list):
            tokens += len(item)  # already tokens
        else:
            tokens += max(1, text_tokens(str(item or "")))
    return tokens, json.dumps(items), [{"role": "user", "content": json.dumps(items)}]


def _sse_events(ex: _Exchange, kind: str, model: str, reply: Answer, prompt_tokens: int,
                include_usage: bool) -> Iterator[tuple[str, int | None]]:
    """``data: {...}`` events with the index of the token each carries (None: no token): (chat: a role
    chunk,) one chunk per token, a finish chunk, the usage chunk when asked for, ``data: [DONE]``."""
    created = int(time.time())
    extra: dict[str, Any] = {"usage": None} if include_usage else {}
    chat = kind == "chat/completions"
    base: dict[str, Any] = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{ex.correlation.replace('-', '')[:24]}",
                            "object": "chat.completion.chunk" if chat else "text_completion",
                            "created": created, "model": model}
    if chat:
        base["system_fingerprint"] = "fp_dev_gateway"

    def event(choice: dict[str, Any]) -> str:
        return "data: " + json.dumps({**base, "choices": [choice], **extra}) + "\n\n"

    def token(text: str, finish: str | None) -> str:
        if chat:
            delta = {"content": text} if text else {}
            return event({"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish})
        return event({"text": text, "index": 0, "logprobs": None, "finish_reason": finish})

    if chat:
        yield event({"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None,
                     "finish_reason": None}), None
    for index, piece in enumerate(reply.pieces()):
        yield token(piece, None), index
    yield token("", reply.finish_reason), None
    if include_usage:
        usage = {**base, "choices": [], "usage": usage_json(prompt_tokens, len(reply.words))}
        yield "data: " + json.dumps(usage) + "\n\n", None
    yield "data: [DONE]\n\n", None


def write_default_config(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(GatewayConfig.default().to_dict(), indent=2) + "\n", encoding="utf-8")
