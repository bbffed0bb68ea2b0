"""Synthetic APIM gateway + LLM-log rows, generated inside DuckDB (no Python loop per row).

Every value comes from ``hash(i, salt)`` of the row number, so the same arguments always give the
same rows.  Rows are inserted in ``TimeGenerated`` order (as Log Analytics ingests them), straight
into the schema tables that ``local_workspace.create_tables`` makes.

Mix per gateway request: 2 % unauthenticated (401, no subscription), 4 % 429, 1.5 % 5xx, the rest
200; 97 % of the 200s are in the LLM log (12 % of those split into 2 chunks, their token counts on
every chunk, on the first only or on the last only, a third each; 0.3 % with no counts at all), the
other 3 % are "unmetered" and two thirds of them carry a logged response body with a ``usage``
object (the ``auto`` fallback path; cached and reasoning details as Azure writes them); 0.5 % carry the
synthetic-probe header.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# deployment, model name in the LLM log, operation id as APIM logs it
DEPLOYMENTS: tuple[tuple[str, str, str], ...] = (
    ("gpt-4o", "gpt-4o-2024-08-06", "ChatCompletions_Create"),
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "chatcompletions_create"),
    ("o3-mini", "o3-mini-2025-01-31", "ChatCompletions_Create"),
    ("text-embedding-3-small", "text-embedding-3-small", "embeddings_create"),
)
PROBE_HEADER = "x-chargeback-probe"


@dataclass(frozen=True)
class Spec:
    rows: int  # gateway rows
    start: datetime  # aware UTC
    hours: int
    subscriptions: int
    seed: int = 1
    models_per_subscription: int = 0  # 0: every request picks any deployment; k: each subscription uses k

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _reasoning_deployment() -> int:
    return next(n for n, (_, model, _) in enumerate(DEPLOYMENTS) if model.startswith("o3"))


def _values_sql(options: tuple[tuple[str, str, str], ...], column: int, index: str) -> str:
    items = ", ".join("'" + option[column] + "'" for option in options)
    return f"([{items}])[{index} + 1]"


def insert_traffic(con: Any, spec: Spec) -> tuple[int, int]:
    """Insert ``spec.rows`` gateway rows spread evenly over ``spec.hours`` (+ their LLM-log rows).

    Returns (gateway rows, LLM-log rows) inserted.
    """
    seed = spec.seed
    step_us = spec.hours * 3_600_000_000 / spec.rows
    d = len(DEPLOYMENTS)
    k = spec.models_per_subscription
    dep = (f"(hash(i, {seed} + 1) % {spec.subscriptions} + hash(i, {seed} + 2) % {k}) % {d}" if k
           else f"hash(i, {seed} + 2) % {d}")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE bench_staged AS
        SELECT i,
               CAST(? AS TIMESTAMP) + to_microseconds(CAST(floor(i * {step_us}) AS BIGINT)) AS ts,
               md5(CAST(i AS VARCHAR) || '-{seed}') AS h,
               CAST(hash(i, {seed}) % 1000 AS BIGINT) AS roll,
               CAST(hash(i, {seed} + 1) % {spec.subscriptions} AS BIGINT) AS sub,
               CAST({dep} AS BIGINT) AS dep,
               CAST(hash(i, {seed} + 3) % 1000 AS BIGINT) AS roll2,
               50 + CAST(hash(i, {seed} + 4) % 4000 AS BIGINT) AS prompt,
               10 + CAST(hash(i, {seed} + 5) % 1500 AS BIGINT) AS completion,
               CAST(hash(i, {seed} + 6) % 100 AS BIGINT) AS stream_roll,
               CAST(300 + hash(i, {seed} + 7) % 8000 AS BIGINT) AS backend_ms,
               CAST(hash(i, {seed} + 8) % 1000 AS BIGINT) AS layout_roll
        FROM range(?) t(i)
    """, [_naive(spec.start), spec.rows])
    deployment = _values_sql(DEPLOYMENTS, 0, "dep")
    model = _values_sql(DEPLOYMENTS, 1, "dep")
    operation = _values_sql(DEPLOYMENTS, 2, "dep")
    embeddings = f"dep = {d - 1}"
    status = "CASE WHEN roll < 20 THEN 401 WHEN roll < 60 THEN 429 WHEN roll < 68 THEN 500 WHEN roll < 75 THEN 503 " \
             "ELSE 200 END"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE bench_requests AS
        SELECT *, {status} AS status,
               CASE WHEN roll < 20 THEN '' ELSE 'sub-' || lpad(CAST(sub AS VARCHAR), 5, '0') END AS subscription,
               CASE WHEN roll < 20 THEN '' ELSE 'product-' || CAST(sub % 7 AS VARCHAR) END AS product,
               {deployment} AS deployment, {model} AS model, {operation} AS operation,
               {embeddings} AS embeddings,
               substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-a' || substr(h, 18, 3)
                   || '-' || substr(h, 21, 12) AS correlation,
               roll >= 75 AND roll2 >= 30 AS in_llm,
               roll >= 75 AND roll2 < 20 AS with_body,
               NOT ({embeddings}) AND stream_roll < 30 AS streamed
        FROM bench_staged
    """)
    con.execute("DROP TABLE bench_staged")
    # Usage as Azure OpenAI writes it, with its details: cached input on a quarter of the calls (whole 128-token
    # blocks), reasoning tokens for the o3-mini deployment (part of the completion).
    cached = "CASE WHEN roll2 % 4 = 0 THEN (prompt // 128) * 128 ELSE 0 END"
    reasoning = f"CASE WHEN dep = {_reasoning_deployment()} THEN completion // 2 ELSE 0 END"
    usage = ("'\"usage\":{\"prompt_tokens\":' || CAST(prompt AS VARCHAR) || ',\"completion_tokens\":' || "
             "CAST(completion AS VARCHAR) || ',\"total_tokens\":' || CAST(prompt + completion AS VARCHAR) || "
             "',\"prompt_tokens_details\":{\"cached_tokens\":' || CAST(" + cached + " AS VARCHAR) || "
             "',\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":' || CAST("
             + reasoning + " AS VARCHAR) || ',\"audio_tokens\":0}}'")
    body = ("CASE WHEN with_body THEN '{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"model\":\"' "
            "|| model || '\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
            f"\"lorem ipsum\"}},\"finish_reason\":\"stop\"}}],' || {usage} || '}}' END")
    headers = ("'{\"content-type\":\"application/json\",\"user-agent\":\"AzureOpenAI/Python 1.57.0\"' || "
               f"CASE WHEN roll2 >= 995 THEN ',\"{PROBE_HEADER}\":\"1\"' ELSE '' END || '}}'")
    url = ("'https://apim-bench.azure-api.net/openai/deployments/' || deployment || "
           "CASE WHEN embeddings THEN '/embeddings' ELSE '/chat/completions' END || '?api-version=2024-10-21'")
    con.execute(f"""
        INSERT INTO "ApiManagementGatewayLogs" (
            "TimeGenerated", "ApiId", "ApimSubscriptionId", "ApiRevision", "BackendMethod", "BackendResponseBody",
            "BackendResponseCode", "BackendTime", "BackendUrl", "Cache", "CallerIpAddress", "Category",
            "ClientProtocol", "ClientTime", "CorrelationId", "IsRequestSuccess", "Method", "OperationId",
            "OperationName", "ProductId", "Region", "RequestHeaders", "RequestSize", "_ResourceId", "ResponseCode",
            "ResponseSize", "SourceSystem", "TenantId", "TotalTime", "Type", "Url")
        SELECT ts, 'azure-openai', subscription, '1', 'POST', {body},
               CASE WHEN status = 401 THEN NULL ELSE status END, CASE WHEN status = 401 THEN NULL ELSE backend_ms END,
               replace({url}, 'apim-bench.azure-api.net', 'aoai-bench.openai.azure.com'), 'none',
               '10.0.' || CAST(roll % 4 AS VARCHAR) || '.' || CAST(2 + roll2 % 250 AS VARCHAR), 'GatewayLogs',
               'HTTP/1.1', roll % 5, correlation, status < 400, 'POST', operation,
               'Microsoft.ApiManagement/GatewayLogs', product, 'West Europe', {headers}, prompt * 4,
               '/SUBSCRIPTIONS/0000/RESOURCEGROUPS/RG-AI/PROVIDERS/MICROSOFT.APIMANAGEMENT/SERVICE/APIM-BENCH',
               status, completion * 4 + 300, 'Azure', '11111111-1111-1111-1111-111111111111',
               backend_ms + roll % 40, 'ApiManagementGatewayLogs', {url}
        FROM bench_requests ORDER BY i
    """)
    # LLM-log rows: chunk 0 for every logged request, a second chunk for 12 % of them (long prompts).
    # Which chunk carries the counts is not documented: every chunk, the first only (NULL on the
    # others) or the last only (0 on the others), by layout_roll % 3; 0.3 % carry none at all.
    last = "CASE WHEN stream_roll >= 88 THEN 1 ELSE 0 END"
    counted = (f"(layout_roll >= 3 AND (layout_roll % 3 = 0 OR (layout_roll % 3 = 1 AND seq = 0) "
               f"OR (layout_roll % 3 = 2 AND seq = {last})))")
    uncounted = "CASE WHEN layout_roll % 3 = 1 THEN NULL ELSE 0 END"
    con.execute(f"""
        INSERT INTO "ApiManagementGatewayLlmLog" (
            "TimeGenerated", "ApiVersion", "CompletionTokens", "CorrelationId", "DeploymentName",
            "IsStreamCompletion", "ModelName", "OperationName", "PromptTokens", "Region", "RequestId",
            "RequestMessages", "ResponseMessages", "_ResourceId", "SequenceNumber", "SourceSystem", "TenantId",
            "TotalTokens", "Type")
        SELECT ts + to_milliseconds(backend_ms), '2024-10-21',
               CASE WHEN NOT {counted} THEN {uncounted} WHEN embeddings THEN 0 ELSE completion END,
               correlation, deployment, streamed, model,
               'Microsoft.ApiManagement/GatewayLlmLogs', CASE WHEN {counted} THEN prompt ELSE {uncounted} END,
               'West Europe', correlation,
               '[{{"role":"user","content":"bench prompt ' || CAST(seq AS VARCHAR) || '"}}]',
               '[{{"role":"assistant","content":"bench answer"}}]',
               '/SUBSCRIPTIONS/0000/RESOURCEGROUPS/RG-AI/PROVIDERS/MICROSOFT.APIMANAGEMENT/SERVICE/APIM-BENCH',
               seq, 'Azure', '11111111-1111-1111-1111-111111111111',
               CASE WHEN {counted} THEN prompt + CASE WHEN embeddings THEN 0 ELSE completion END ELSE {uncounted} END,
               'ApiManagementGatewayLlmLog'
        FROM bench_requests, range(2) s(seq)
        WHERE in_llm AND (seq = 0 OR stream_roll >= 88)
        ORDER BY i, seq
    """)
    gateway = spec.rows
    llm = con.execute("SELECT count(*) FROM bench_requests, range(2) s(seq) "
                      "WHERE in_llm AND (seq = 0 OR stream_roll >= 88)").fetchone()[0]
    con.execute("DROP TABLE bench_requests")
    return gateway, int(llm)


def build_workspace(path: Any, specs: list[Spec]) -> tuple[int, int]:
    """A fresh workspace file holding each spec's traffic, inserted in the order given."""
    from shared.adapters import local_workspace

    path.unlink(missing_ok=True)
    con = local_workspace.connect(path)
    try:
        local_workspace.create_tables(con)
        gateway = llm = 0
        for spec in specs:
            g, m = insert_traffic(con, spec)
            gateway, llm = gateway + g, llm + m
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return gateway, llm
