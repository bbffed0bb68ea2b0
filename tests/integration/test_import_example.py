"""The import example of docs/operations.md, imported as an operator would (``chargeback workspace
import``) and read back from the DuckDB workspace: the documented records are real-shaped and land."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.tooling.cli import main
from shared.tooling.log_import.records import GATEWAY, LLM

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def documented_example() -> str:
    match = re.search(r"<!-- import-example -->\n```json\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"no import example in {DOC}"
    return match.group(1)


def test_documented_example_imports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import duckdb

    text = documented_example()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert sorted(r["category"] for r in records) == ["GatewayLlmLogs", "GatewayLogs"]
    source = tmp_path / "example.json"
    source.write_text(text)
    workspace = tmp_path / "ws.duckdb"
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {"LOCAL_WORKSPACE_PATH": str(workspace)}}))
    assert main(["--settings", str(settings), "workspace", "import", str(source)]) == 0
    out = capsys.readouterr().out
    assert "malformed" not in out
    assert f"{GATEWAY:<28}{1:>10}{1:>10}{0:>12}{0:>10}" in out and f"{LLM:<28}{1:>10}{1:>10}{0:>12}{0:>10}" in out
    # as the doc says: only the fields Log Analytics has no column for are left out
    assert "ignored fields (no matching column): DeploymentVersion (1), Level (2)" in out

    gateway, llm = (r["properties"] for r in sorted(records, key=lambda r: r["category"] != "GatewayLogs"))
    con = duckdb.connect(str(workspace), read_only=True)
    try:
        assert con.execute(f'SELECT CorrelationId, ApimSubscriptionId, ResponseCode, TotalTime, Region FROM "{GATEWAY}"'
                           ).fetchall() == [(records[0]["correlationId"], gateway["apimSubscriptionId"],
                                             gateway["responseCode"], records[0]["durationMs"], "West Europe")]
        assert con.execute(f'SELECT CorrelationId, PromptTokens, CompletionTokens, TotalTokens, ModelName FROM "{LLM}"'
                           ).fetchall() == [(records[1]["correlationId"], llm["promptTokens"], llm["completionTokens"],
                                             llm["totalTokens"], llm["modelName"])]
    finally:
        con.close()
