"""The deployment and price sync timers: registered only when scheduled (indexed in a fresh process, as
the host's worker does), and what each run does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.functions.timer import TimerRequest

from shared.composition import meter_price_store
from shared.settings import Settings
from shared.triggers import sync_timers
from tests.conftest import process_environment
from tests.integration.test_costing_wired import Feed

ROOT = Path(__file__).resolve().parents[2]
INDEX = ("import json, function_app; print(json.dumps({f.get_function_name(): "
         "f.get_bindings_dict()['bindings'][0].get('schedule') for f in function_app.app.get_functions()}))")


def indexed(**schedules: str) -> dict[str, str | None]:
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_SYNC_SCHEDULE")} | schedules
    done = subprocess.run([sys.executable, "-c", INDEX], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, str | None] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_sync_timers_are_registered_only_when_scheduled() -> None:
    assert set(indexed()) == {"http_app_func", "rollup", "probe"}
    assert set(indexed(PRICE_SYNC_SCHEDULE=" ")) == {"http_app_func", "rollup", "probe"}  # blank = off
    both = indexed(DEPLOYMENT_SYNC_SCHEDULE="0 10 3 * * *", PRICE_SYNC_SCHEDULE="0 40 3 * * *")
    assert both["deployment_sync"] == "%DEPLOYMENT_SYNC_SCHEDULE%" and both["price_sync"] == "%PRICE_SYNC_SCHEDULE%"
    assert set(indexed(PRICE_SYNC_SCHEDULE="0 40 3 * * *")) == {"http_app_func", "rollup", "probe", "price_sync"}


@pytest.fixture
def feed() -> Iterator[Feed]:
    served = Feed()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


def test_price_sync_timer_stores_the_feed(settings: Settings, feed: Feed) -> None:
    configured = settings.with_overrides(RETAIL_PRICES_URL=feed.url, PRICE_SYNC_SCHEDULE="0 40 3 * * *")
    with process_environment(configured):
        sync_timers.price_sync(TimerRequest())
    assert len(meter_price_store(configured).load("USD").book.rows) == 27


def test_deployment_sync_timer_is_off_without_accounts(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    with process_environment(settings), caplog.at_level("WARNING"):
        sync_timers.deployment_sync(TimerRequest())
    assert "AOAI_ACCOUNT_IDS is empty" in caplog.text
