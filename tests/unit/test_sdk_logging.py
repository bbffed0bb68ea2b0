"""The Functions app keeps the Azure SDK's HTTP logging at WARNING: no request line per storage call."""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path

import pytest
from azure.data.tables import TableClient

from tests.unit.test_table_format import CONNECTION, Captured, CapturingTransport

HTTP_POLICY = "azure.core.pipeline.policies.http_logging_policy"


def storage_call() -> None:
    table = TableClient.from_connection_string(CONNECTION, "t", transport=CapturingTransport())
    with pytest.raises(Captured):
        table.get_entity("p", "r")


def test_the_triggers_package_quiets_the_sdk_http_log(caplog: pytest.LogCaptureFixture) -> None:
    for name in ("azure", HTTP_POLICY):
        logging.getLogger(name).setLevel(logging.NOTSET)
    with caplog.at_level(logging.INFO):
        storage_call()
    assert any(record.name == HTTP_POLICY for record in caplog.records)  # what the app logged before
    caplog.clear()
    import shared.triggers  # what function_app imports first

    importlib.reload(shared.triggers)  # its import, run again now that the levels were reset
    with caplog.at_level(logging.INFO):
        storage_call()
    assert [record for record in caplog.records if record.name.startswith("azure")] == []
    assert logging.getLogger(HTTP_POLICY).getEffectiveLevel() == logging.WARNING


def test_host_json_keeps_the_hosts_own_azure_sdk_logs_at_warning() -> None:
    host = json.loads((Path(__file__).parents[2] / "host.json").read_text())
    assert host["logging"]["logLevel"]["Azure.Core"] == "Warning"
