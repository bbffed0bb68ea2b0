"""Several workspaces are one query: azure-monitor-query's real LogsQueryClient, pointed at a loopback
stand-in of the query endpoint, sends it to the first workspace and names the others in the body's
``workspaces`` (``additional_workspaces``); the result keeps each gateway's rows apart by ApimService."""

from __future__ import annotations

from typing import Any

from shared.adapters.log_analytics import LogAnalyticsSource
from shared.composition import log_source
from shared.queries import load
from shared.settings import Settings
from tests.fakes import FakeCredential
from tests.integration.test_log_analytics import END, ROW, START, FakeWorkspace, table, workspace

__all__ = ["workspace"]  # the fixture, used by name

WEU = "6f1b2c3d-0000-4a5b-8c9d-00000000a001"
EUS = "6f1b2c3d-0000-4a5b-8c9d-00000000b002"
SEA = "6f1b2c3d-0000-4a5b-8c9d-00000000c003"


def settings_for(server: FakeWorkspace, **values: str) -> Settings:
    return Settings({"LOG_SOURCE": "loganalytics", "LOG_ANALYTICS_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
                     "LOG_QUERY_MAX_RETRIES": "0", **values})


def source_from(settings: Settings) -> LogAnalyticsSource:
    """What composition builds, with https enforcement off for the loopback endpoint (a bearer token
    over http is refused by azure-core otherwise)."""
    built = log_source(settings, FakeCredential())
    assert isinstance(built, LogAnalyticsSource)
    return LogAnalyticsSource(built.workspace_id, built.endpoint, built.server_timeout_seconds, FakeCredential(),
                              client_options={"retry_total": 0}, query_options={"enforce_https": False},
                              additional_workspaces=built.additional_workspaces)


def row(service: str, requests: int) -> list[Any]:
    return [*ROW[:5], requests, *ROW[6:-2], service, ""]


def test_the_query_names_every_further_workspace(workspace: FakeWorkspace) -> None:
    workspace.reply = {"tables": [table([row("apim-weu", 3), row("apim-eus", 5)])]}
    settings = settings_for(workspace, LOG_ANALYTICS_WORKSPACE_ID=WEU,
                            LOG_ANALYTICS_WORKSPACE_IDS=f"{EUS}, {WEU}, {SEA}")
    source = source_from(settings)
    rows = source.run(load("usage_by_subscription"), {"window_start": START, "window_end": END})
    sent = workspace.requests[0]
    assert sent["path"] == f"/v1/workspaces/{WEU}/query"  # the first one is queried ...
    assert sent["body"]["workspaces"] == [EUS, SEA]  # ... and the others named, each once
    assert "ApimService" in sent["body"]["query"]
    assert [(r["SubscriptionId"], r["ApimService"], r["Requests"]) for r in rows] == [
        ("team-a", "apim-weu", 3), ("team-a", "apim-eus", 5)]
    assert EUS in source.describe() and SEA in source.describe()


def test_one_workspace_sends_no_workspace_list(workspace: FakeWorkspace) -> None:
    workspace.reply = {"tables": [table([row("apim-weu", 3)])]}
    source = source_from(settings_for(workspace, LOG_ANALYTICS_WORKSPACE_ID=WEU))
    source.run(load("usage_by_subscription"), {"window_start": START, "window_end": END})
    sent = workspace.requests[0]
    assert sent["path"] == f"/v1/workspaces/{WEU}/query"
    assert not sent["body"].get("workspaces")
