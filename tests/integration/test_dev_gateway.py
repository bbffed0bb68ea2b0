"""The dev gateway over real loopback HTTP with the ``openai`` client: answers, limits, and the
rows it writes into the DuckDB workspace, column by column; body truncation; lock contention."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import openai
import pytest
from openai import AzureOpenAI

from shared.adapters import local_workspace
from shared.composition import rollup_service, table_store
from shared.core.usage import Granularity
from shared.errors import ChargebackError, LogSourceError
from shared.settings import Settings
from shared.tooling.dev_gateway import (
    PROBE_KEY,
    RESOURCE_ID,
    DevGateway,
    Faults,
    GatewayConfig,
    chat_prompt_tokens,
)

API_VERSION = "2024-10-21"
KEYS = {
    "key-team-a": {"subscription": "team-a", "product": "gold", "tpm": 1_000_000},
    "key-small": {"subscription": "team-small", "product": "trial", "tpm": 60},
}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "workspace.duckdb"


@pytest.fixture
def gateway(workspace: Path) -> Iterator[DevGateway]:
    with DevGateway(GatewayConfig.from_dict({"keys": KEYS}), workspace) as gw:
        yield gw


_CLIENTS: list[AzureOpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Every client a test made is closed after it: its pooled connections would leak (warnings are errors)."""
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def client(gw: DevGateway, key: str = "key-team-a", **headers: str) -> AzureOpenAI:
    made = AzureOpenAI(azure_endpoint=gw.url, api_key=key, api_version=API_VERSION, max_retries=0,
                       default_headers=headers or None, timeout=10)
    _CLIENTS.append(made)
    return made


def rows(gw: DevGateway, table: str) -> list[dict[str, Any]]:
    assert gw.wait_idle(10)
    con = duckdb.connect(str(gw.writer.path), read_only=True)
    try:
        cursor = con.execute(f'SELECT * FROM "{table}" ORDER BY TimeGenerated, SequenceNumber'
                             if table.endswith("LlmLog") else f'SELECT * FROM "{table}" ORDER BY TimeGenerated')
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def test_chat_completion_rows_column_by_column(gateway: DevGateway) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is chargeback?"}]
    before = datetime.now(UTC).replace(tzinfo=None)
    raw = client(gateway, **{"x-chargeback-probe": "1"}).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=messages, max_tokens=50)  # type: ignore[arg-type]
    after = datetime.now(UTC).replace(tzinfo=None)
    completion = raw.parse()
    body = raw.http_response.content
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == chat_prompt_tokens(messages)
    assert completion.usage.completion_tokens == len(completion.choices[0].message.content.split())  # type: ignore[union-attr]

    (row,) = rows(gateway, "ApiManagementGatewayLogs")
    url = f"{gateway.url}/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}"
    expected = {
        "CorrelationId": raw.headers["apim-request-id"], "ApimSubscriptionId": "team-a", "ProductId": "gold",
        "ApiId": "azure-openai", "ApiRevision": "1", "OperationId": "ChatCompletions_Create",
        "OperationName": "Microsoft.ApiManagement/GatewayLogs", "Method": "POST", "Url": url,
        "BackendId": "local-model-stub", "BackendMethod": "POST", "BackendProtocol": "HTTP/1.1",
        "BackendUrl": "https://local-model-stub.openai.azure.com/openai/deployments/gpt-4o/chat/completions"
                      f"?api-version={API_VERSION}",
        "ResponseCode": 200, "BackendResponseCode": 200, "IsRequestSuccess": True, "CallerIpAddress": "127.0.0.1",
        "Region": "Local Dev", "Category": "GatewayLogs", "ClientProtocol": "HTTP/1.1", "Cache": "none",
        "ResponseSize": len(body), "ResponseBody": body.decode(), "BackendResponseBody": body.decode(),
        "LastErrorReason": "", "LastErrorMessage": "", "LastErrorSource": "",  # Kusto: a missing string is ""
        "Type": "ApiManagementGatewayLogs", "_ResourceId": RESOURCE_ID, "SourceSystem": "Azure",
    }
    for column, value in expected.items():
        assert row[column] == value, column
    assert json.loads(row["RequestHeaders"]) == {"x-chargeback-probe": "1"}  # the probe marker, logged
    assert before <= row["TimeGenerated"] <= after
    assert row["RequestSize"] > 0 and 0 <= row["BackendTime"] <= row["TotalTime"] < 2000
    assert row["TenantId"] and row["ClientTime"] >= 0

    (llm,) = rows(gateway, "ApiManagementGatewayLlmLog")
    expected_llm = {
        "CorrelationId": row["CorrelationId"], "RequestId": row["CorrelationId"], "ModelName": completion.model,
        "DeploymentName": "gpt-4o", "PromptTokens": completion.usage.prompt_tokens,
        "CompletionTokens": completion.usage.completion_tokens, "TotalTokens": completion.usage.total_tokens,
        "IsStreamCompletion": False, "SequenceNumber": 0, "ApiVersion": API_VERSION, "Region": "Local Dev",
        "OperationName": "Microsoft.ApiManagement/GatewayLlmLogs", "Type": "ApiManagementGatewayLlmLog",
        "TimeGenerated": row["TimeGenerated"],
    }
    for column, value in expected_llm.items():
        assert llm[column] == value, column
    assert json.loads(llm["RequestMessages"]) == messages
    assert json.loads(llm["ResponseMessages"]) == [{"role": "assistant",
                                                     "content": completion.choices[0].message.content}]


def test_streamed_call_with_usage_chunk(gateway: DevGateway) -> None:
    chunks = list(client(gateway).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "stream please"}], stream=True, max_tokens=3,
        stream_options={"include_usage": True}))  # short: the whole SSE body fits the 8,192 logged bytes
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices and usage.completion_tokens == len(text.split())
    (row,) = rows(gateway, "ApiManagementGatewayLogs")
    assert row["ResponseCode"] == 200 and row["OperationId"] == "ChatCompletions_Create"
    assert row["BackendResponseBody"].startswith("data: {") and row["BackendResponseBody"].endswith("data: [DONE]\n\n")
    assert row["BackendResponseBody"].count("data: ") == 1 + 3 + 1 + 1 + 1  # role, tokens, finish, usage, DONE
    assert json.loads(row["RequestHeaders"]) == {}  # no marker: nothing logged
    (llm,) = rows(gateway, "ApiManagementGatewayLlmLog")
    assert llm["IsStreamCompletion"] is True
    assert (llm["PromptTokens"], llm["CompletionTokens"]) == (usage.prompt_tokens, usage.completion_tokens)

    # Without include_usage there is no usage chunk (as in Azure OpenAI).
    plain = list(client(gateway).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True))
    assert all(c.usage is None for c in plain)


def test_embeddings_and_completions(gateway: DevGateway) -> None:
    c = client(gateway)
    emb = c.embeddings.create(model="text-embedding-3-small", input=["one", "two words"])  # base64 on the wire
    assert [len(d.embedding) for d in emb.data] == [1536, 1536] and emb.usage.prompt_tokens == 1 + 3
    assert emb.data[0].embedding == c.embeddings.create(model="text-embedding-3-small", input="one").data[0].embedding
    done = c.completions.create(model="gpt-4o", prompt="Say something", max_tokens=3)
    assert done.usage is not None and done.usage.completion_tokens == 3 and done.choices[0].finish_reason == "length"
    ops = [r["OperationId"] for r in rows(gateway, "ApiManagementGatewayLogs")]
    assert ops == ["Embeddings_Create", "Embeddings_Create", "Completions_Create"]
    llm = rows(gateway, "ApiManagementGatewayLlmLog")
    assert [(r["PromptTokens"], r["CompletionTokens"]) for r in llm] == [(4, 0), (1, 0), (4, 3)]


def test_bad_key_401_and_token_limit_429_rows(gateway: DevGateway) -> None:
    with pytest.raises(openai.AuthenticationError):
        client(gateway, key="nope").chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    small = client(gateway, key="key-small")
    small.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "a" * 80}], max_tokens=10)
    with pytest.raises(openai.RateLimitError) as info:
        small.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "a" * 80}])
    retry_after = int(info.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    unauthorized, ok, limited = rows(gateway, "ApiManagementGatewayLogs")
    assert (unauthorized["ResponseCode"], unauthorized["ApimSubscriptionId"]) == (401, "")
    assert unauthorized["ProductId"] == "" and unauthorized["OperationId"] == "ChatCompletions_Create"
    assert unauthorized["BackendResponseCode"] is None and unauthorized["BackendTime"] is None
    assert unauthorized["LastErrorReason"] == "SubscriptionKeyInvalid" and unauthorized["IsRequestSuccess"] is False
    assert ok["ResponseCode"] == 200
    assert (limited["ResponseCode"], limited["ApimSubscriptionId"], limited["BackendResponseCode"]) == (
        429, "team-small", None)
    assert limited["LastErrorReason"] == "TokenLimitExceeded" and f"{retry_after} seconds" in limited["ResponseBody"]
    assert len(rows(gateway, "ApiManagementGatewayLlmLog")) == 1  # only the answered call


def test_faults_over_http_and_unknown_deployment(gateway: DevGateway) -> None:
    assert httpx.put(f"{gateway.url}/_dev/faults", json={"status": 503}).status_code == 200
    with pytest.raises(openai.InternalServerError):
        client(gateway).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert httpx.put(f"{gateway.url}/_dev/faults", json={"bogus": 1}).status_code == 400
    httpx.put(f"{gateway.url}/_dev/faults", json={})
    with pytest.raises(openai.NotFoundError):
        client(gateway).chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    fault, missing = rows(gateway, "ApiManagementGatewayLogs")
    assert (fault["ResponseCode"], fault["BackendResponseCode"], fault["LastErrorReason"]) == (503, 503, "BackendError")
    assert (missing["ResponseCode"], missing["BackendResponseCode"]) == (404, 404)
    assert "DeploymentNotFound" in missing["BackendResponseBody"]


def test_body_cut_at_8192_bytes_and_rollup_counts_tokens_from_the_llm_log(
        tmp_path: Path, settings: Settings) -> None:
    workspace = settings.local_workspace_path
    config = GatewayConfig.from_dict({"keys": KEYS, "llm_chunk_bytes": 16384})
    long_prompt = "Please review: " + "chargeback " * 3000  # ~33 KB: three LLM-log chunks of 16 KiB
    with DevGateway(config, workspace) as gw:
        started = datetime.now(UTC)
        raw = client(gw).chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": long_prompt}])
        completion = raw.parse()
        body = raw.http_response.content
        (row,) = rows(gw, "ApiManagementGatewayLogs")
        llm = rows(gw, "ApiManagementGatewayLlmLog")
    assert completion.usage is not None and len(body) > 8192
    for column in ("BackendResponseBody", "ResponseBody"):
        logged = row[column].encode()
        assert len(logged) == 8192 and logged == body[:8192], column
    assert b'"usage"' in body[8192:] and '"usage"' not in row["BackendResponseBody"]  # the body alone is no help
    assert row["ResponseSize"] == len(body)
    assert [r["SequenceNumber"] for r in llm] == [0, 1, 2]
    request_text = "".join(m["content"] for r in llm for m in json.loads(r["RequestMessages"]))
    assert request_text == long_prompt
    assert all(len(m["content"].encode()) <= 16384 for r in llm for m in json.loads(r["RequestMessages"]))
    assert {r["PromptTokens"] for r in llm} == {completion.usage.prompt_tokens}

    rollup_service(settings).backfill(started - timedelta(hours=1), started + timedelta(hours=1))
    (usage,) = table_store(settings).read("team-a", Granularity.HOUR, started - timedelta(hours=1),
                                          started + timedelta(hours=1))
    assert usage.counters.requests == 1 and usage.counters.unmetered_requests == 0
    assert usage.counters.prompt_tokens == completion.usage.prompt_tokens
    assert usage.counters.completion_tokens == completion.usage.completion_tokens
    assert usage.key.model == completion.model


def test_body_logging_off(workspace: Path) -> None:
    with DevGateway(GatewayConfig.from_dict({"keys": KEYS, "body_bytes": 0, "llm_messages": False}), workspace) as gw:
        client(gw).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
        (row,) = rows(gw, "ApiManagementGatewayLogs")
        (llm,) = rows(gw, "ApiManagementGatewayLlmLog")
    assert row["ResponseBody"] == "" and row["BackendResponseBody"] == ""  # strings: "" (Kusto has no null string)
    assert llm["RequestMessages"] is None and llm["PromptTokens"] > 0


def test_lock_contention_is_retried_by_the_writer_and_reported_to_a_reader(gateway: DevGateway) -> None:
    path = gateway.writer.path
    client(gateway).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "first"}])
    assert gateway.wait_idle(10)
    holder = subprocess.Popen(  # another process holds DuckDB's write lock for a second
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', flush=True);"
         " time.sleep(1.0); c.close()", str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LogSourceError, match="locked by another writer"):
            local_workspace.connect(path, read_only=True, lock_wait=0.2)
        started = time.monotonic()
        client(gateway).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "second"}])
        assert time.monotonic() - started < 0.5  # the request does not wait for the log write
    finally:
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    assert len(rows(gateway, "ApiManagementGatewayLogs")) == 2  # written once the lock was released
    assert gateway.writer.pending == 0


def test_loopback_only_and_config_file(tmp_path: Path, workspace: Path) -> None:
    with pytest.raises(ChargebackError, match="loopback"):
        DevGateway(GatewayConfig.default(), workspace, host="0.0.0.0")
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps({"keys": KEYS, "body_bytes": 9000}))
    with pytest.raises(ChargebackError, match="8192"):
        GatewayConfig.load(path)
    default = GatewayConfig.default()
    assert len([k for k in default.keys if k != PROBE_KEY]) == 3  # three team keys + the probe's own
    assert GatewayConfig.from_dict(default.to_dict()) == default


def test_slow_stream_fault(gateway: DevGateway) -> None:
    gateway.set_faults(Faults(first_token_delay_seconds=0.2, chunk_delay_seconds=0.02, deployments=("gpt-4o",)))
    started = time.monotonic()
    stream = client(gateway).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}],
                                                     max_tokens=5, stream=True)
    first = None
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.monotonic() - started
    assert first is not None and first >= 0.2 and time.monotonic() - started >= 0.2 + 4 * 0.02


def test_production_code_never_loads_the_dev_gateway() -> None:
    code = ("import sys, function_app, shared.composition as c, shared.services.probe, shared.adapters.probe_client; "
            "print(sorted(m for m in sys.modules if m.startswith('shared.tooling')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert out.strip() == "[]"
