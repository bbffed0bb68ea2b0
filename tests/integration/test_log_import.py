"""``chargeback workspace import``: exported APIM logs of every accepted shape into a real DuckDB file."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared import queries
from shared.adapters.local_workspace import LocalWorkspaceSource
from shared.tooling.cli import main
from shared.tooling.log_import.readers import parse_bytes
from shared.tooling.log_import.records import GATEWAY, LLM, SYNTHETIC_PREFIX
from shared.tooling.log_import.writer import ImportReport, import_files
from shared.workspace_schema import table_schemas

RESOURCE = ("/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-AI/PROVIDERS/"
            "MICROSOFT.APIMANAGEMENT/SERVICE/APIM-REAL")
HOUR = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _time(minute: int) -> str:
    return f"2026-11-20T10:{minute:02d}:05.1234567Z"


def gateway(cid: str, minute: int, subscription: str | None, status: int = 200,
            deployment: str = "gpt-4o") -> dict[str, Any]:
    url = f"https://apim-real.azure-api.net/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21"
    properties: dict[str, Any] = {
        "method": "POST", "url": url, "backendMethod": "POST",
        "backendUrl": url.replace("apim-real.azure-api.net", "aoai-real.openai.azure.com"),
        "responseCode": status, "backendResponseCode": status, "responseSize": 1234, "requestSize": "456",
        "cache": "none", "backendTime": 790, "clientTime": 3, "apiId": "azure-openai",
        "operationId": "ChatCompletions_Create", "productId": "ai-standard", "userId": "1",
        "clientProtocol": "HTTP/1.1", "backendProtocol": "HTTP/1.1", "apiRevision": "1",
        "clientTlsVersion": "1.3", "requestHeaders": {"x-ms-client-request-id": cid},
    }
    if subscription is not None:
        properties["apimSubscriptionId"] = subscription
    if status >= 500:
        properties["lastError"] = {"elapsed": 12, "source": "forward-request", "scope": "backend",
                                   "section": "backend", "reason": "Timeout", "message": "backend timed out"}
    return {"time": _time(minute), "resourceId": RESOURCE, "category": "GatewayLogs",
            "operationName": "Microsoft.ApiManagement/GatewayLogs", "correlationId": cid,
            "callerIpAddress": "10.0.0.7", "durationMs": 812, "location": "West Europe",
            "isRequestSuccess": status < 400, "Level": 4, "properties": properties}


def llm(cid: str, minute: int, prompt: int, completion: int, sequence: int = 0, model: str = "gpt-4o-2024-08-06",
        deployment: str = "gpt-4o", stream: bool = False, category: str = "GatewayLlmLogs") -> dict[str, Any]:
    return {"time": _time(minute), "resourceId": RESOURCE, "category": category,
            "operationName": "Microsoft.ApiManagement/GatewayLlmLogs", "correlationId": cid,
            "location": "West Europe", "Level": 4,
            "properties": {"promptTokens": prompt, "completionTokens": completion, "totalTokens": prompt + completion,
                           "modelName": model, "deploymentName": deployment, "isStreamCompletion": stream,
                           "sequenceNumber": sequence, "requestId": f"req-{cid}", "apiVersion": "2024-10-21",
                           "requestMessages": [{"role": "user", "content": f"prompt {sequence}"}],
                           "responseMessages": [{"role": "assistant", "content": "answer"}]}}


def traffic() -> list[dict[str, Any]]:
    return [
        gateway("a", 1, "team-a"), llm("a", 1, 100, 50),
        gateway("b", 2, "team-a"), llm("b", 2, 2000, 300, stream=True, category="GatewayLLMLogs"),
        llm("b", 2, 2000, 300, sequence=1, stream=True),  # second chunk of a long prompt: counted once
        gateway("c", 3, "team-b", deployment="gpt-4o-mini"),
        llm("c", 3, 10, 5, model="gpt-4o-mini-2024-07-18", deployment="gpt-4o-mini"),
        gateway("d", 4, "team-b", status=429),
        gateway("e", 5, None, status=401),  # no subscription key: unattributed
        gateway("f", 6, "team-a"),  # success the LLM log missed: unmetered
        gateway("g", 7, "team-a", status=503),
    ]


def expected_usage(records: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    """Per-subscription totals computed straight from the fixture records."""
    subscription = {r["correlationId"]: r["properties"].get("apimSubscriptionId") or "unattributed"
                    for r in records if r["category"] == "GatewayLogs"}
    out: dict[str, Counter[str]] = {}
    for sub in subscription.values():
        out.setdefault(sub, Counter())["Requests"] += 1
    for r in records:
        p = r["properties"]
        if r["category"].lower() == "gatewayllmlogs" and p["sequenceNumber"] == 0:
            totals = out[subscription[r["correlationId"]]]
            totals["PromptTokens"] += p["promptTokens"]
            totals["CompletionTokens"] += p["completionTokens"]
            totals["TotalTokens"] += p["totalTokens"]
    return out


def json_lines(records: list[Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def rows(path: Path, table: str, where: str = "TRUE") -> list[dict[str, Any]]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        result = con.execute(f'SELECT * FROM "{table}" WHERE {where} ORDER BY TimeGenerated, CorrelationId')
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    finally:
        con.close()


def counts(report: ImportReport, table: str) -> tuple[int, int, int, int]:
    c = report.tables[table]
    return c.read, c.inserted, c.duplicates, c.skipped


def kusto_missing(kql_type: str) -> str | None:
    """A missing value as Log Analytics holds it: "" for a string, null for any other type."""
    return "" if kql_type == "string" else None


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "ws" / "workspace.duckdb"


def test_diagnostic_json_lines_column_by_column(tmp_path: Path, workspace: Path) -> None:
    source = tmp_path / "PT1H.json"
    source.write_text(json_lines(traffic()))
    report = import_files(workspace, [source])
    assert report.ok and report.skipped == 0
    assert counts(report, GATEWAY) == (7, 7, 0, 0)
    assert counts(report, LLM) == (4, 4, 0, 0)
    assert report.ignored_fields["Level"] == 11

    gateway_columns = {c.name: kusto_missing(c.kql_type) for c in table_schemas()[GATEWAY]}
    url = "https://apim-real.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    expected_gateway = gateway_columns | {
        "TimeGenerated": datetime(2026, 11, 20, 10, 7, 5, 123456), "ApiId": "azure-openai",
        "ApimSubscriptionId": "team-a", "ApiRevision": "1", "BackendMethod": "POST", "BackendProtocol": "HTTP/1.1",
        "BackendResponseCode": 503, "BackendTime": 790,
        "BackendUrl": url.replace("apim-real.azure-api.net", "aoai-real.openai.azure.com"), "Cache": "none",
        "CallerIpAddress": "10.0.0.7", "Category": "GatewayLogs", "ClientProtocol": "HTTP/1.1", "ClientTime": 3,
        "ClientTlsVersion": "1.3", "CorrelationId": "g", "IsRequestSuccess": False, "LastErrorElapsed": 12,
        "LastErrorMessage": "backend timed out", "LastErrorReason": "Timeout", "LastErrorScope": "backend",
        "LastErrorSection": "backend", "LastErrorSource": "forward-request", "Method": "POST",
        "OperationId": "ChatCompletions_Create", "OperationName": "Microsoft.ApiManagement/GatewayLogs",
        "ProductId": "ai-standard", "Region": "West Europe", "RequestHeaders": '{"x-ms-client-request-id":"g"}',
        "RequestSize": 456, "_ResourceId": RESOURCE, "ResponseCode": 503, "ResponseSize": 1234,
        "_SubscriptionId": "00000000-0000-0000-0000-000000000000", "TotalTime": 812,
        "Type": "ApiManagementGatewayLogs", "Url": url, "UserId": "1",
    }
    [actual] = rows(workspace, GATEWAY, "CorrelationId = 'g'")
    assert list(actual) == list(gateway_columns)
    for column, value in expected_gateway.items():
        assert actual[column] == value, column

    expected_llm = {c.name: kusto_missing(c.kql_type) for c in table_schemas()[LLM]} | {
        "TimeGenerated": datetime(2026, 11, 20, 10, 2, 5, 123456), "ApiVersion": "2024-10-21",
        "CompletionTokens": 300, "CorrelationId": "b", "DeploymentName": "gpt-4o", "IsStreamCompletion": True,
        "ModelName": "gpt-4o-2024-08-06", "OperationName": "Microsoft.ApiManagement/GatewayLlmLogs",
        "PromptTokens": 2000, "Region": "West Europe", "RequestId": "req-b",
        "RequestMessages": '[{"role":"user","content":"prompt 1"}]', "_ResourceId": RESOURCE,
        "ResponseMessages": '[{"role":"assistant","content":"answer"}]', "SequenceNumber": 1,
        "_SubscriptionId": "00000000-0000-0000-0000-000000000000", "TotalTokens": 2300,
        "Type": "ApiManagementGatewayLlmLog",
    }
    [actual] = rows(workspace, LLM, "CorrelationId = 'b' AND SequenceNumber = 1")
    for column, value in expected_llm.items():
        assert actual[column] == value, column
    # "GatewayLLMLogs" (another spelling of the category) lands in the same table
    assert [r["SequenceNumber"] for r in rows(workspace, LLM, "CorrelationId = 'b'")] == [0, 1]


@pytest.mark.parametrize("shape", ["records", "array"])
def test_document_shapes_with_line_numbers(tmp_path: Path, workspace: Path, shape: str) -> None:
    records: list[Any] = [*traffic(), {"time": _time(9), "category": "WebSocketConnectionLogs", "properties": {}}]
    document: Any = {"records": records} if shape == "records" else records
    source = tmp_path / "export.json"
    source.write_text(json.dumps(document, indent=2))
    report = import_files(workspace, [source])
    assert counts(report, GATEWAY) == (7, 7, 0, 0)
    assert counts(report, LLM) == (4, 4, 0, 0)
    # the unknown category is reported at the line its element starts on, not dropped silently
    text_lines = source.read_text().splitlines()
    start = max(i for i, line in enumerate(text_lines, 1) if line.strip() == "{")
    assert [(s.line, s.reason) for s in report.skips] == [(start, "unknown category 'WebSocketConnectionLogs'")]
    assert counts(report, "(no table)") == (1, 0, 0, 1)


def test_log_analytics_csv_export(tmp_path: Path, workspace: Path) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["TenantId", "TimeGenerated [UTC]", "CorrelationId", "ApimSubscriptionId", "ResponseCode",
                     "IsRequestSuccess", "TotalTime", "RequestHeaders", "BackendTime", "Url", "Type", "_ResourceId"])
    writer.writerow(["t-1", "11/20/2026, 10:01:05.123 AM", "c1", "team-a", "200", "True", "812",
                     '{"x-a":"1"}', "", "https://x/openai/deployments/gpt-4o/chat", "ApiManagementGatewayLogs", ""])
    writer.writerow(["t-1", "11/20/2026, 1:02:03.000 PM", "c2", "", "429", "false", "15", "", "", "u",
                     "ApiManagementGatewayLogs", "/subscriptions/s-1/resourcegroups/rg"])
    writer.writerow(["t-1", "2026-11-20T10:03:00Z", "c3", "team-b", "not-a-number", "true", "1", "", "", "u",
                     "ApiManagementGatewayLogs", ""])
    source = tmp_path / "query_data.csv"
    source.write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode())  # the portal writes a BOM
    report = import_files(workspace, [source])
    assert counts(report, GATEWAY) == (3, 2, 0, 1)
    assert [(s.line, s.reason) for s in report.skips] == [(4, "ResponseCode: cannot convert 'not-a-number' to int")]
    first, second = rows(workspace, GATEWAY)
    assert first["TimeGenerated"] == datetime(2026, 11, 20, 10, 1, 5, 123000)
    assert (first["ResponseCode"], first["IsRequestSuccess"], first["TotalTime"]) == (200, True, 812)
    assert first["RequestHeaders"] == '{"x-a":"1"}' and first["BackendTime"] is None
    assert first["TenantId"] == "t-1" and first["Type"] == GATEWAY and first["_SubscriptionId"] == ""
    assert second["TimeGenerated"] == datetime(2026, 11, 20, 13, 2, 3)
    assert (second["ApimSubscriptionId"], second["IsRequestSuccess"], second["_SubscriptionId"]) == ("", False, "s-1")


def test_csv_without_type_needs_table(tmp_path: Path, workspace: Path) -> None:
    source = tmp_path / "llm.csv"
    source.write_text("TimeGenerated [UTC],CorrelationId,SequenceNumber,PromptTokens,ModelName\n"
                      "2026-11-20 10:01:00.000,x,0,12,gpt-4o\n")
    report = import_files(workspace, [source])
    assert not report.ok and "--table" in report.failed[0]
    report = import_files(workspace, [source], table=LLM)
    assert counts(report, LLM) == (1, 1, 0, 0)
    [row] = rows(workspace, LLM)
    assert (row["PromptTokens"], row["Type"], row["SequenceNumber"]) == (12, LLM, 0)


def test_local_time_csv_is_refused(tmp_path: Path, workspace: Path) -> None:
    source = tmp_path / "local.csv"
    source.write_text("TimeGenerated [Local Time],CorrelationId,Type\n11/20/2026, 10:01:05.123 AM,x,"
                      "ApiManagementGatewayLogs\n")
    report = import_files(workspace, [source])
    assert not report.ok and "time zone" in report.failed[0]


def test_log_analytics_json_export(tmp_path: Path, workspace: Path) -> None:
    # `az monitor log-analytics query` style: every value a string, plus a TableName column
    exported = [
        {"TableName": "PrimaryResult", "TimeGenerated": "2026-11-20T10:01:00.5Z", "CorrelationId": "j1",
         "SequenceNumber": "0", "PromptTokens": "40", "CompletionTokens": "2", "TotalTokens": "42",
         "IsStreamCompletion": "False", "RequestMessages": '[{"role":"user"}]', "Type": "ApiManagementGatewayLlmLog"},
        {"TableName": "PrimaryResult", "TimeGenerated": "2026-11-20T11:02:00+01:00", "CorrelationId": "j2",
         "SequenceNumber": 0, "PromptTokens": 7, "Type": "ApiManagementGatewayLlmLog"},
    ]
    source = tmp_path / "rows.json"
    source.write_text(json.dumps(exported))
    report = import_files(workspace, [source])
    assert counts(report, LLM) == (2, 2, 0, 0) and report.ignored_fields == Counter({"TableName": 2})
    first, second = rows(workspace, LLM)
    assert first["TimeGenerated"] == datetime(2026, 11, 20, 10, 1, 0, 500000)
    assert (first["PromptTokens"], first["TotalTokens"], first["IsStreamCompletion"]) == (40, 42, False)
    assert first["RequestMessages"] == '[{"role":"user"}]'
    assert second["TimeGenerated"] == datetime(2026, 11, 20, 10, 2)  # offset converted to UTC

    untyped = tmp_path / "untyped.json"
    untyped.write_text(json.dumps([{"TimeGenerated": "2026-11-20T10:05:00Z", "CorrelationId": "j3"}]))
    report = import_files(workspace, [untyped])
    assert not report.ok and "--table" in report.failed[0]
    assert counts(import_files(workspace, [untyped], table=GATEWAY), GATEWAY) == (1, 1, 0, 0)


@pytest.mark.parametrize("name", ["PT1H.json.gz", "PT1H.bin"])
def test_gzip_detected_by_magic_bytes(tmp_path: Path, workspace: Path, name: str) -> None:
    source = tmp_path / name
    source.write_bytes(gzip.compress(json_lines(traffic()).encode()))
    report = import_files(workspace, [source])
    assert report.files == [(str(source), "json, gzip")]
    assert counts(report, GATEWAY) == (7, 7, 0, 0) and counts(report, LLM) == (4, 4, 0, 0)


def test_malformed_lines_are_counted_and_located(tmp_path: Path, workspace: Path) -> None:
    bad_code = gateway("x2", 9, "team-a")
    bad_code["properties"]["responseCode"] = "abc"
    no_time = gateway("x1", 8, "team-a")
    del no_time["time"]
    lines = [
        json.dumps(gateway("ok1", 1, "team-a")),         # 1
        '{"time": "2026-11-20T10:00:00Z", "category":',  # 2 bad JSON
        json.dumps(no_time),                              # 3 missing time
        "",                                               # 4 blank: nothing to report
        json.dumps(bad_code),                             # 5 un-coercible value
        json.dumps({**llm("ok1", 1, 5, 5), "category": "DeveloperPortalAuditLogs"}),  # 6 unknown category
        "42",                                             # 7 not an object
        json.dumps(llm("ok1", 1, 5, 5)),                  # 8
    ]
    source = tmp_path / "mixed.json"
    source.write_text("\n".join(lines) + "\n")
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(json.dumps({"Values": {}}))
    report = import_files(workspace, [source])
    assert [s.line for s in report.skips] == [2, 3, 5, 6, 7]
    assert report.skipped == 5
    assert counts(report, GATEWAY) == (3, 1, 0, 2)
    assert counts(report, LLM) == (1, 1, 0, 0)
    assert counts(report, "(no table)") == (3, 0, 0, 3)
    reasons = {s.line: s.reason for s in report.skips}
    assert reasons[3] == "missing time" and reasons[5] == "ResponseCode: cannot convert 'abc' to int"
    assert reasons[6] == "unknown category 'DeveloperPortalAuditLogs'" and reasons[2].startswith("bad JSON")


def test_only_twenty_skips_are_listed(tmp_path: Path, workspace: Path) -> None:
    source = tmp_path / "bad.json"
    source.write_text("{oops\n" * 25)
    report = import_files(workspace, [source])
    assert report.skipped == 25 and [s.line for s in report.skips] == list(range(1, 21))
    assert "skipped 25 malformed record(s), the first 20:" in report.summary()


def test_reimport_adds_nothing(tmp_path: Path, workspace: Path) -> None:
    records = traffic()
    anonymous = gateway("", 30, "team-c")  # no correlation id: keyed by a hash of the row
    del anonymous["correlationId"]
    source = tmp_path / "PT1H.json"
    source.write_text(json_lines([*records, records[0], anonymous]))  # one record twice in the file
    first = import_files(workspace, [source])
    assert counts(first, GATEWAY) == (9, 8, 1, 0) and counts(first, LLM) == (4, 4, 0, 0)
    synthetic = rows(workspace, GATEWAY, "ApimSubscriptionId = 'team-c'")
    assert [r["CorrelationId"][: len(SYNTHETIC_PREFIX)] for r in synthetic] == [SYNTHETIC_PREFIX]

    again = import_files(workspace, [source])
    assert counts(again, GATEWAY) == (9, 0, 9, 0) and counts(again, LLM) == (4, 0, 4, 0)
    assert len(rows(workspace, GATEWAY)) == 8 and len(rows(workspace, LLM)) == 4
    # the same requests in another shape are duplicates too
    array = tmp_path / "same.json"
    array.write_text(json.dumps({"records": records}))
    third = import_files(workspace, [array], batch_rows=2)
    assert third.tables[GATEWAY].inserted == 0 and third.tables[LLM].inserted == 0


def test_rollup_query_over_imported_rows(tmp_path: Path, workspace: Path) -> None:
    records = traffic()
    source = tmp_path / "PT1H.json"
    source.write_text(json_lines(records))
    assert import_files(workspace, [source]).ok
    result = LocalWorkspaceSource(workspace).run(
        queries.load("usage_by_subscription"), {"window_start": HOUR, "window_end": HOUR + timedelta(hours=1)})
    actual: dict[str, Counter[str]] = {}
    for row in result:
        totals = actual.setdefault(row["SubscriptionId"], Counter())
        for name in ("Requests", "PromptTokens", "CompletionTokens", "TotalTokens"):
            totals[name] += row[name]
    expected = expected_usage(records)
    assert {sub: +c for sub, c in actual.items()} == {sub: +c for sub, c in expected.items()}
    assert expected["team-a"]["TotalTokens"] == 150 + 2300  # the fixture itself: chunk 1 not counted


def test_event_hub_capture_avro(tmp_path: Path, workspace: Path) -> None:
    import fastavro

    # The schema Event Hubs Capture writes (Microsoft's capture overview)
    values = {"type": "map", "values": ["long", "double", "string", "bytes"]}
    schema = fastavro.parse_schema({
        "type": "record", "name": "EventData", "namespace": "Microsoft.ServiceBus.Messaging",
        "fields": [{"name": "SequenceNumber", "type": "long"}, {"name": "Offset", "type": "string"},
                   {"name": "EnqueuedTimeUtc", "type": "string"}, {"name": "SystemProperties", "type": values},
                   {"name": "Properties", "type": values}, {"name": "Body", "type": ["null", "bytes"]}]})
    records = traffic()
    events = [{"SequenceNumber": i, "Offset": str(i * 100), "EnqueuedTimeUtc": "11/20/2026 10:10:00 AM",
               "SystemProperties": {}, "Properties": {}, "Body": body}
              for i, body in enumerate([json.dumps({"records": records[:6]}).encode(),
                                        json.dumps({"records": records[6:]}).encode(), b"{broken"])]
    source = tmp_path / "00.avro"
    with source.open("wb") as out:
        fastavro.writer(out, schema, events, codec="deflate")
    log = parse_bytes(source.read_bytes())
    assert (log.kind, log.unit) == ("avro", "event")
    report = import_files(workspace, [source])
    assert counts(report, GATEWAY) == (7, 7, 0, 0) and counts(report, LLM) == (4, 4, 0, 0)
    assert [(s.unit, s.line) for s in report.skips] == [("event", 3)]


def test_cli_workspace_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LOCAL_WORKSPACE_PATH", raising=False)
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(json.dumps({"Values": {"LOCAL_WORKSPACE_PATH": "data/ws.duckdb"}}))
    logs = tmp_path / "insights-logs-gatewaylogs" / "y=2026" / "m=11"
    logs.mkdir(parents=True)
    (logs / "PT1H.json").write_text(json_lines(traffic()) + "{not json\n")
    base = ["--settings", str(settings_file), "workspace", "import"]

    assert main([*base, str(tmp_path / "insights-logs-gatewaylogs")]) == 0  # a directory: every file under it
    out = capsys.readouterr().out
    assert f"{GATEWAY}{7:>10}{7:>10}{0:>12}{0:>10}".replace(GATEWAY, f"{GATEWAY:<28}") in out
    assert "PT1H.json line 12: bad JSON" in out
    assert len(rows(tmp_path / "data" / "ws.duckdb", GATEWAY)) == 7

    other = tmp_path / "other.duckdb"
    assert main([*base, "--path", str(other), str(tmp_path / "missing.json"), str(logs / "PT1H.json")]) == 1
    captured = capsys.readouterr().out
    assert "cannot read" in captured and "missing.json" in captured
    assert len(rows(other, GATEWAY)) == 7  # the readable file was still imported

    assert main([*base, "--table", "Heartbeat", str(logs / "PT1H.json")]) == 2
    assert "--table" in capsys.readouterr().err
