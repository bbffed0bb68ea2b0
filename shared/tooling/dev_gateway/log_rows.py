"""What a real APIM would log for one request, as rows of the Log Analytics tables.

An :class:`Exchange` records what the gateway did with a request; it becomes one
``ApiManagementGatewayLogs`` row and, for an answered LLM call, ``ApiManagementGatewayLlmLog``
rows: one per ``SequenceNumber`` when long messages are split into chunks.  Bodies are cut at the
diagnostic setting's byte limit, as APIM does.  Anthropic and Gemini calls get no LLM-log rows: Microsoft
documents the LLM log for chat completions APIs only, so locally their usage is in the logged bodies alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from shared.tooling.demo import demo_data
from shared.tooling.dev_gateway.config import GatewayConfig
from shared.tooling.dev_gateway.model_stub import content_text

RESOURCE_ID = ("/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-LOCAL/PROVIDERS/"
               "MICROSOFT.APIMANAGEMENT/SERVICE/APIM-DEV-GATEWAY")
BACKEND = "https://local-model-stub.openai.azure.com"


@dataclass
class Exchange:
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
    api_id: str = "azure-openai"
    backend: str = BACKEND  # the backend's base URL (the frontend path is appended)


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
        data = content_text(message.get("content")).encode("utf-8")
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


def gateway_row(ex: Exchange, cfg: GatewayConfig) -> dict[str, Any]:
    """The ``ApiManagementGatewayLogs`` row of a finished request (TotalTime measured now)."""
    total_ms = round((time.perf_counter() - ex.started) * 1000)
    backend_url = None
    if ex.backend_status is not None:  # the request reached the (stub) backend
        frontend = urlsplit(ex.url)
        backend_url = ex.backend + frontend.path + (f"?{frontend.query}" if frontend.query else "")
    return {
        "TimeGenerated": ex.when, "CorrelationId": ex.correlation, "ApimSubscriptionId": ex.subscription,
        "ProductId": ex.product, "ApiId": ex.api_id if ex.operation else "", "ApiRevision": "1",
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


def llm_rows(ex: Exchange, cfg: GatewayConfig) -> list[dict[str, Any]]:
    """The ``ApiManagementGatewayLlmLog`` rows of an answered LLM call (none for anything else)."""
    if ex.llm is None or ex.status >= 400:
        return []
    llm = ex.llm
    request_pieces: list[list[dict[str, Any]]] = [[]]
    response_pieces: list[list[dict[str, Any]]] = [[]]
    if cfg.llm_messages:
        request_pieces = split_messages(llm["request_messages"], cfg.llm_chunk_bytes)
        response_pieces = split_messages(llm["response_messages"], cfg.llm_chunk_bytes)
    rows = []
    for sequence in range(max(len(request_pieces), len(response_pieces))):
        rows.append({
            "TimeGenerated": ex.when, "CorrelationId": ex.correlation, "ModelName": llm["model"],
            "DeploymentName": ex.deployment, "PromptTokens": llm["prompt_tokens"],
            "CompletionTokens": llm["completion_tokens"],
            "TotalTokens": llm["prompt_tokens"] + llm["completion_tokens"],
            "IsStreamCompletion": llm["stream"], "SequenceNumber": sequence, "ApiVersion": llm["api_version"],
            "OperationName": "Microsoft.ApiManagement/GatewayLlmLogs", "Region": cfg.region,
            "RequestId": ex.correlation,
            "RequestMessages": (request_pieces[sequence] if sequence < len(request_pieces) else [])
            if cfg.llm_messages else None,
            "ResponseMessages": (response_pieces[sequence] if sequence < len(response_pieces) else [])
            if cfg.llm_messages else None,
            "Type": "ApiManagementGatewayLlmLog", "_ResourceId": RESOURCE_ID, "TenantId": demo_data.TENANT,
            "SourceSystem": "Azure",
        })
    return rows
