"""LogAnalyticsSource against a local stand-in of the Log Analytics query endpoint (no Azure here)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.adapters.log_analytics import LogAnalyticsSource
from shared.errors import LogSourceError, PartialResultError, QueryContractError
from shared.queries import USAGE_COLUMNS, load
from tests.fakes import FakeCredential

START = datetime(2026, 11, 25, 10, tzinfo=UTC)
END = datetime(2026, 11, 25, 12, tzinfo=UTC)


class FakeWorkspace(ThreadingHTTPServer):
    """Answers every query with ``reply``/``status``, or first with the scripted answers in
    ``script``: (status, body, headers, delay seconds)."""

    reply: dict[str, Any]
    status: int = 200
    requests: list[dict[str, Any]]
    script: list[tuple[int, dict[str, Any], dict[str, str], float]]


class Handler(BaseHTTPRequestHandler):
    server: FakeWorkspace

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization"),
                                     "prefer": self.headers.get("Prefer")})
        status, reply, headers, delay = (self.server.script.pop(0) if self.server.script
                                         else (self.server.status, self.server.reply, {}, 0.0))
        time.sleep(delay)
        payload = json.dumps(reply).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def workspace() -> Iterator[FakeWorkspace]:
    server = FakeWorkspace(("127.0.0.1", 0), Handler)
    server.requests = []
    server.script = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()  # the listening socket too, not only the serving thread


def source(server: FakeWorkspace) -> LogAnalyticsSource:
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    return LogAnalyticsSource("ws-123", endpoint, 120, FakeCredential(), client_options={"retry_total": 0},
                              query_options={"enforce_https": False})


def table(rows: list[list[Any]], columns: dict[str, str] | None = None) -> dict[str, Any]:
    columns = dict(USAGE_COLUMNS) if columns is None else columns
    return {"name": "PrimaryResult", "columns": [{"name": n, "type": t} for n, t in columns.items()], "rows": rows}


# one row of the usage contract (shared.queries.USAGE_COLUMNS, in order): 12 reasoning tokens, 4 cached audio,
# on APIM service apim-weu, served at the priority tier
ROW = ["2026-11-25T10:00:00Z", "team-a", "p1", "gpt-4o", "gpt-4o", 3, 30, 20, 50, 0, 1, 0, 0, 0, 0, 12, 0, 4, 0, 0,
       "apim-weu", "priority"]


def test_rows_are_conformed_and_parameters_bound_in_the_declaration(workspace: FakeWorkspace) -> None:
    workspace.reply = {"tables": [table([ROW])]}
    rows = source(workspace).run(load("usage_by_subscription"), {"window_start": START, "window_end": END})
    assert rows == [{"PeriodStart": START, "SubscriptionId": "team-a", "ProductId": "p1", "Model": "gpt-4o",
                     "Deployment": "gpt-4o", "Requests": 3, "PromptTokens": 30, "CompletionTokens": 20,
                     "TotalTokens": 50, "CachedTokens": 0, "StreamedRequests": 1, "ErrorRequests": 0,
                     "UnmeteredRequests": 0, "UnmeteredStreamed": 0, "UnmeteredTruncated": 0,
                     "ReasoningTokens": 12, "AudioPromptTokens": 0, "CachedAudioTokens": 4,
                     "AudioCompletionTokens": 0, "CacheWriteTokens": 0, "ApimService": "apim-weu",
                     "ServiceTier": "priority"}]
    sent = workspace.requests[0]
    assert sent["path"] == "/v1/workspaces/ws-123/query"
    assert sent["auth"] == "Bearer fake-token"
    assert "wait=120" in sent["prefer"]
    query = sent["body"]["query"]
    assert ("declare query_parameters(window_start:datetime = datetime(2026-11-25T10:00:00.000000Z), "
            "window_end:datetime = datetime(2026-11-25T12:00:00.000000Z), usage_source:string = \"auto\", "
            'probe_subscription:string = "", probe_header:string = "x-chargeback-probe");') in query
    assert query.count("2026-11-25T10:00:00") == 1  # the value appears only in the declaration
    assert sent["body"]["timespan"].startswith("2026-11-25T09:00:00")


def test_partial_result_stops_the_run(workspace: FakeWorkspace) -> None:
    workspace.reply = {"tables": [table([ROW])],
                       "error": {"code": "PartialError", "message": "There were some errors processing your query.",
                                 "details": [{"code": "EngineError", "message": "result truncated"}]}}
    with pytest.raises(PartialResultError, match="partial result"):
        source(workspace).run(load("usage_by_subscription"), {"window_start": START, "window_end": END})


def test_query_error_is_translated(workspace: FakeWorkspace) -> None:
    workspace.status = 400
    workspace.reply = {"error": {"code": "BadArgumentError", "message": "The request had some invalid properties",
                                 "innererror": {"code": "SyntaxError", "message": "bad"}}}
    with pytest.raises(LogSourceError, match="BadArgumentError") as info:
        source(workspace).run(load("usage_by_subscription"), {"window_start": START, "window_end": END})
    assert "fake-token" not in str(info.value)


def test_renamed_column_breaks_loudly(workspace: FakeWorkspace) -> None:
    columns = dict(USAGE_COLUMNS)
    columns["Tokens"] = columns.pop("TotalTokens")
    workspace.reply = {"tables": [table([ROW], columns)]}
    with pytest.raises(QueryContractError, match="TotalTokens"):
        source(workspace).run(load("usage_by_subscription"), {"window_start": START, "window_end": END})


def test_values_that_are_not_of_the_declared_type_are_refused(workspace: FakeWorkspace) -> None:
    workspace.reply = {"tables": [table([])]}
    with pytest.raises(LogSourceError, match="timezone-aware"):
        source(workspace).run(load("usage_by_subscription"), {"window_start": "2026-11-25", "window_end": END})
    assert workspace.requests == []  # nothing was sent
