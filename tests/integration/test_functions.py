"""The Functions entry point, indexed the way the host indexes it, and its functions called directly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from shared.composition import table_store
from shared.core.usage import Granularity
from shared.settings import Settings
from shared.tooling.demo.demo_run import write_demo_workspace
from tests.conftest import TEST_API_KEY, process_environment
from tests.functions_support import functions


@pytest.fixture
def app_environment(settings: Settings) -> Iterator[Settings]:
    """The function reads its settings from the process environment, as in Azure."""
    with process_environment(settings):
        yield settings


def test_timer_rolls_up_into_tables(app_environment: Settings, caplog: pytest.LogCaptureFixture) -> None:
    now = datetime.now(UTC)
    write_demo_workspace(app_environment.local_workspace_path, seed=3, days=1, end=now + timedelta(hours=1))
    rollup = functions()["rollup"].get_user_function()
    with caplog.at_level("INFO"):
        rollup(TimerRequest(past_due=True))
    assert "past due" in caplog.text and "rollup done" in caplog.text
    rows = table_store(app_environment).read_all(Granularity.HOUR, now - timedelta(hours=3), now + timedelta(hours=1))
    assert rows and all(r.period_start >= now - timedelta(hours=3) for r in rows)
    assert table_store(app_environment).get("usage-rollup").value is not None


def test_timer_fails_visibly(app_environment: Settings, caplog: pytest.LogCaptureFixture) -> None:
    # no workspace file: the run must raise (a failed invocation), not swallow it
    rollup = functions()["rollup"].get_user_function()
    with pytest.raises(Exception, match="does not exist"), caplog.at_level("ERROR"):
        rollup(TimerRequest())
    assert "watermark unchanged" in caplog.text


class _Context:
    invocation_id = "test"
    function_name = "http_app_func"
    function_directory = "."
    trace_context = None
    retry_context = None


def test_http_function_serves_the_api(app_environment: Settings) -> None:
    http = functions()["http_app_func"].get_user_function()
    headers = {"x-api-key": TEST_API_KEY}

    async def calls() -> tuple[func.HttpResponse, func.HttpResponse, func.HttpResponse]:
        bad = await http(func.HttpRequest("GET", "http://localhost/api/usage?granularity=bogus", headers=headers,
                                          body=b""), _Context())
        ok = await http(func.HttpRequest("GET", "http://localhost/api/usage?from=2026-11-01&to=2026-11-02",
                                         headers=headers, body=b""), _Context())
        anonymous = await http(func.HttpRequest("GET", "http://localhost/api/usage", body=b""), _Context())
        return bad, ok, anonymous

    bad, ok, anonymous = asyncio.run(calls())
    assert bad.status_code == 400
    assert json.loads(bad.get_body())["error"]["parameter"] == "granularity"
    assert ok.status_code == 200 and json.loads(ok.get_body())["rows"] == []
    assert anonymous.status_code == 401
