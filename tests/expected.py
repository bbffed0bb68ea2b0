"""Independent computation of what the rollup must produce, straight from generated log rows.

Deliberately written without the production modules (no shared.core, no KQL): plain loops over
the rows the workspace was filled with.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

FIELDS = ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
          "streamed_requests", "error_requests", "unmetered_requests")


def expected_hourly(gateway: list[dict[str, Any]], llm: list[dict[str, Any]], start: datetime,
                    end: datetime) -> dict[tuple[datetime, str, str, str, str], dict[str, int]]:
    first_chunk = {row["CorrelationId"]: row for row in llm if row["SequenceNumber"] == 0}
    out: dict[tuple[datetime, str, str, str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for g in gateway:
        if not (start <= g["TimeGenerated"] < end):
            continue
        tokens = first_chunk.get(g["CorrelationId"])
        if tokens is None and "/openai/" not in g["Url"]:
            continue
        hour = g["TimeGenerated"].replace(minute=0, second=0, microsecond=0)
        deployment = tokens["DeploymentName"] if tokens else g["Url"].split("/deployments/")[1].split("/")[0]
        key = (hour, g["ApimSubscriptionId"] or "unattributed", g["ProductId"] or "",
               tokens["ModelName"] if tokens else "unknown", deployment)
        c = out[key]
        c["requests"] += 1
        c["error_requests"] += g["ResponseCode"] >= 400
        if tokens:
            c["prompt_tokens"] += tokens["PromptTokens"]
            c["completion_tokens"] += tokens["CompletionTokens"]
            c["total_tokens"] += tokens["TotalTokens"]
            c["streamed_requests"] += bool(tokens["IsStreamCompletion"])
        elif 200 <= g["ResponseCode"] < 300:
            c["unmetered_requests"] += 1
    return dict(out)


def rollup_to(hourly: dict[tuple[datetime, str, str, str, str], dict[str, int]],
              period: str) -> dict[tuple[datetime, str, str, str, str], dict[str, int]]:
    out: dict[tuple[datetime, str, str, str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for (hour, *rest), counters in hourly.items():
        start = hour.replace(hour=0) if period == "day" else hour.replace(day=1, hour=0)
        for name, value in counters.items():
            out[(start, *rest)][name] += value  # type: ignore[index]
    return dict(out)
