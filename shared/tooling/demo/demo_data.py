"""Deterministic, realistic APIM gateway traffic for the local workspace (``chargeback demo-data``).

Several subscriptions and products, chat/embeddings deployments, streamed and non-streamed calls,
429s and 5xx, unauthenticated calls (no subscription), successful calls the LLM log missed
(unmetered), and long prompts whose LLM-log entry is split into several SequenceNumber chunks.
The same seed always gives the same rows.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

RESOURCE_ID = ("/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-AI/PROVIDERS/"
               "MICROSOFT.APIMANAGEMENT/SERVICE/APIM-DEMO")
TENANT = "11111111-1111-1111-1111-111111111111"

SUBSCRIPTIONS: tuple[tuple[str, str, float], ...] = (
    # subscription id, product, share of traffic
    ("team-search", "ai-premium", 0.30),
    ("team-support-bot", "ai-standard", 0.25),
    ("team-analytics", "ai-standard", 0.20),
    ("team-marketing", "ai-standard", 0.15),
    ("sandbox", "ai-trial", 0.10),
)
DEPLOYMENTS: tuple[tuple[str, str, str, float], ...] = (
    # deployment, model name in responses, operation, share
    ("gpt-4o", "gpt-4o-2024-08-06", "ChatCompletions_Create", 0.45),
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "chatcompletions_create", 0.40),
    ("text-embedding-3-small", "text-embedding-3-small", "embeddings_create", 0.15),
)

# The other APIs APIM's AI gateway fronts (the dev gateway answers for these models).
ANTHROPIC_MODELS: tuple[str, ...] = ("claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001")
GEMINI_MODELS: tuple[str, ...] = ("gemini-2.5-flash", "gemini-2.0-flash")


@dataclass
class DemoTraffic:
    gateway: list[dict[str, Any]] = field(default_factory=list)
    llm: list[dict[str, Any]] = field(default_factory=list)


def generate(seed: int = 42, days: int = 3, end: datetime | None = None,
             requests_per_hour: int = 40, body_logging: bool = False, llm_log_share: float = 1.0) -> DemoTraffic:
    """``body_logging`` adds BackendResponseBody (cut at 8,192 bytes like APIM's cap);
    ``llm_log_share`` < 1 leaves that share of requests out of the LLM log (older gateways)."""
    rng = random.Random(seed)
    end = (end or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    traffic = DemoTraffic()
    hour = start
    while hour < end:
        # Office-hours shape: busier during the (UTC) working day.
        load = 1.0 if 7 <= hour.hour < 19 else 0.35
        for _ in range(max(1, int(rng.gauss(requests_per_hour * load, requests_per_hour * load * 0.2)))):
            _one_request(rng, hour + timedelta(seconds=rng.uniform(0, 3599.999)), traffic,
                         body_logging, llm_log_share)
        hour += timedelta(hours=1)
    return traffic


def _pick(rng: random.Random, options: tuple[Any, ...]) -> Any:
    return rng.choices(options, weights=[o[-1] for o in options])[0]


def _one_request(rng: random.Random, when: datetime, traffic: DemoTraffic, body_logging: bool,
                 llm_log_share: float) -> None:
    subscription, product, _ = _pick(rng, SUBSCRIPTIONS)
    deployment, model, operation, _ = _pick(rng, DEPLOYMENTS)
    correlation = str(uuid.UUID(int=rng.getrandbits(128)))
    roll = rng.random()
    status = 200
    logged_by_llm = True
    if roll < 0.04:
        status = 429
    elif roll < 0.055:
        status = rng.choice((500, 503))
    elif roll < 0.065:
        status, subscription, product = 401, "", ""  # no/invalid key: APIM knows no subscription
    elif roll < 0.075 or rng.random() >= llm_log_share:
        logged_by_llm = False  # success the LLM log has no entry for
    embeddings = operation == "embeddings_create"
    streamed = not embeddings and rng.random() < 0.3
    prompt = rng.randint(20, 500) if embeddings else rng.randint(50, 4000)
    completion = 0 if embeddings else rng.randint(10, 1500)
    backend_ms = rng.randint(80, 400) if embeddings else rng.randint(300, 9000)
    path = "embeddings" if embeddings else "chat/completions"
    url = f"https://apim-demo.azure-api.net/openai/deployments/{deployment}/{path}?api-version=2024-10-21"
    traffic.gateway.append({
        "TimeGenerated": when, "CorrelationId": correlation, "ApimSubscriptionId": subscription,
        "ProductId": product, "ApiId": "azure-openai", "OperationId": operation,
        "OperationName": "Microsoft.ApiManagement/GatewayLogs", "Method": "POST", "Url": url,
        "BackendUrl": url.replace("apim-demo.azure-api.net", "aoai-demo.openai.azure.com"),
        "BackendMethod": "POST", "ResponseCode": status,
        "BackendResponseCode": None if status == 401 else status,
        "TotalTime": backend_ms + rng.randint(2, 40), "BackendTime": None if status == 401 else backend_ms,
        "ClientTime": rng.randint(0, 5), "CallerIpAddress": f"10.0.{rng.randint(0, 3)}.{rng.randint(2, 254)}",
        "IsRequestSuccess": status < 400, "Region": "West Europe", "Category": "GatewayLogs",
        "RequestSize": prompt * 4, "ResponseSize": completion * 4 + 300, "ClientProtocol": "HTTP/1.1",
        "ApiRevision": "1", "Cache": "none", "Type": "ApiManagementGatewayLogs",
        "_ResourceId": RESOURCE_ID, "TenantId": TENANT, "SourceSystem": "Azure",
    })
    if body_logging:
        traffic.gateway[-1]["BackendResponseBody"] = _body(rng, status, model, embeddings, streamed, prompt,
                                                           completion)
    if status != 200 or not logged_by_llm:
        return
    chunks = 1 + prompt // 1500  # long prompts are split into several LLM-log entries
    for sequence in range(chunks):
        traffic.llm.append({
            "TimeGenerated": when + timedelta(milliseconds=backend_ms), "CorrelationId": correlation,
            "ModelName": model, "DeploymentName": deployment, "PromptTokens": prompt,
            "CompletionTokens": completion, "TotalTokens": prompt + completion,
            "IsStreamCompletion": streamed, "SequenceNumber": sequence, "ApiVersion": "2024-10-21",
            "OperationName": "Microsoft.ApiManagement/GatewayLlmLogs", "Region": "West Europe",
            "RequestId": correlation, "RequestMessages": [{"role": "user", "content": f"demo prompt {sequence}"}],
            "ResponseMessages": [{"role": "assistant", "content": "demo answer"}],
            "Type": "ApiManagementGatewayLlmLog", "_ResourceId": RESOURCE_ID, "TenantId": TENANT,
            "SourceSystem": "Azure",
        })


BODY_BYTES = 8192  # APIM's cap on a logged body


def _body(rng: random.Random, status: int, model: str, embeddings: bool, streamed: bool, prompt: int,
          completion: int) -> str:
    """A backend response body as APIM would log it (synthetic text, cut at BODY_BYTES)."""
    if status == 429:
        text = json.dumps({"error": {"code": "429", "message": "Rate limit is exceeded. Try again later."}})
    elif status >= 400:
        text = "" if status == 401 else "<html><body>upstream error</body></html>"
    elif rng.random() < 0.02:
        text = ""  # body logging sampled out / disabled on this operation
    else:
        cached = rng.choice((0, 0, 0, 128 * rng.randint(1, 8))) if not embeddings else 0
        usage: dict[str, object] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                    "total_tokens": prompt + completion}
        if cached:
            usage["prompt_tokens_details"] = {"cached_tokens": min(cached, prompt)}
        if embeddings:
            dims = rng.choice((256, 1536))  # a 1536-dimension vector does not fit in the cap
            vector = [round(rng.uniform(-1, 1), 6) for _ in range(dims)]
            text = json.dumps({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": vector}],
                               "model": model, "usage": {"prompt_tokens": prompt, "total_tokens": prompt}})
        elif streamed:
            pieces = ["word "] * max(1, completion // 25)  # a chunk per ~25 tokens keeps demo bodies small
            include_usage = rng.random() < 0.6
            chunks: list[dict[str, object]] = [
                {"id": "chatcmpl-demo", "object": "chat.completion.chunk", "model": model,
                 "choices": [{"index": 0, "delta": {"content": piece}}], **({"usage": None} if include_usage else {})}
                for piece in pieces]
            if include_usage:
                chunks.append({"id": "chatcmpl-demo", "object": "chat.completion.chunk", "model": model,
                               "choices": [], "usage": usage})
            text = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
        else:
            content = "lorem ipsum " * (completion // 3)
            text = json.dumps({"id": "chatcmpl-demo", "object": "chat.completion", "model": model,
                               "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                            "finish_reason": "stop"}], "usage": usage})
    return text.encode("utf-8")[:BODY_BYTES].decode("utf-8", "ignore")
