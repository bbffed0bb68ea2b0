"""Hostile input: injection through every user-controlled value, hostile names as table keys,
and no prompt/completion text or key anywhere the app writes."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from shared.composition import rollup_service, table_store
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge
from shared.settings import Settings
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END, TEST_API_KEY
from tests.integration.test_api import get
from tests.integration.test_rollup import stored, write_workspace

FILTER_PAYLOADS = [
    "team-a' or PartitionKey ne 'x",
    "' or ''='",
    "team-a' or 'a' eq 'a",
    "x') or (PartitionKey ge '",
    "team-a\x00",
    "*",
    "team-a%27",
]


@pytest.fixture
def two_teams(settings: Settings) -> Settings:
    rows = [UsageRow(Granularity.HOUR, datetime(2026, 11, 3, h, tzinfo=UTC), UsageKey(sub, "", "m", "d"),
                     Counters(requests=1, total_tokens=10)) for sub in ("team-a", "team-b") for h in (1, 2)]
    store = table_store(settings)
    store.upsert(rows)
    store.upsert(merge(rows, Granularity.DAY))
    return settings


@pytest.mark.parametrize("payload", FILTER_PAYLOADS)
def test_table_filter_payloads_are_literals(two_teams: Settings, payload: str) -> None:
    response = get(two_teams, "/api/usage", subscription=payload, **{"from": "2026-11-01", "to": "2026-11-30"})
    assert response.status_code == 200
    assert response.json()["rows"] == []  # no other subscription's data leaks through the filter
    assert get(two_teams, "/api/usage", subscription="team-a",
               **{"from": "2026-11-01", "to": "2026-11-30"}).json()["totals"]["requests"] == 2


@pytest.mark.parametrize("payload", ["2026-11-01' or RowKey ne '", "2026-11-01T00:00:00Z' or true", "' or 1 eq 1"])
def test_date_payloads_are_refused(two_teams: Settings, payload: str) -> None:
    response = get(two_teams, "/api/usage", **{"from": payload})
    assert response.status_code == 400 and response.json()["error"]["parameter"] == "from"


HOSTILE_NAMES = ["a/b", "back\\slash", "hash#tag", "what?", "ctl\x01\x1f", "quote'\"", "pipe|x", "é漢字",
                 "x" * 1500]


def test_hostile_names_round_trip_through_table_storage(settings: Settings) -> None:
    store = table_store(settings)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [UsageRow(Granularity.MONTH, start, UsageKey(name, name, name, name), Counters(requests=i + 1))
            for i, name in enumerate(HOSTILE_NAMES)]
    store.upsert(rows)
    for row in rows:
        assert store.read(row.key.subscription_id, Granularity.MONTH, start, start + timedelta(days=31)) == [row]
    assert len(store.read_all(Granularity.MONTH, start, start + timedelta(days=31))) == len(HOSTILE_NAMES)


def test_kql_probe_subscription_payload_is_a_literal(settings: Settings) -> None:
    traffic = demo_data.generate(seed=2, days=1, end=DEMO_END, requests_per_hour=10)
    write_workspace(settings.local_workspace_path, traffic)
    plain = rollup_service(settings)
    plain.backfill(DEMO_END - timedelta(days=1), DEMO_END)
    baseline = stored(settings, Granularity.HOUR)
    hostile = settings.with_overrides(TABLE_PREFIX=settings.table_prefix + "h",
                                      PROBE_SUBSCRIPTION_ID='x" or ApimSubscriptionId != "x')
    rollup_service(hostile).backfill(DEMO_END - timedelta(days=1), DEMO_END)
    assert stored(hostile, Granularity.HOUR) == baseline  # nothing reclassified as probe traffic


SECRET_PROMPT = "ZEBRA-PROMPT-7f3a the launch codes are"
SECRET_ANSWER = "QUOKKA-ANSWER-91c2 certainly"


def test_no_prompt_or_completion_text_is_stored_or_logged(settings: Settings,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    traffic = demo_data.generate(seed=4, days=1, end=DEMO_END, requests_per_hour=10, body_logging=True)
    for row in traffic.llm:
        row["RequestMessages"] = [{"role": "user", "content": SECRET_PROMPT}]
        row["ResponseMessages"] = [{"role": "assistant", "content": SECRET_ANSWER}]
    for row in traffic.gateway:
        row["BackendResponseBody"] = json.dumps({"model": "gpt-4o", "choices": [{"message": {
            "content": SECRET_ANSWER}}], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
        row["RequestBody"] = json.dumps({"messages": [{"role": "user", "content": SECRET_PROMPT}]})
    write_workspace(settings.local_workspace_path, traffic)
    with caplog.at_level(logging.DEBUG):
        service = rollup_service(settings)
        service.clock = lambda: DEMO_END + timedelta(minutes=10)
        service.backfill(DEMO_END - timedelta(days=1), DEMO_END)
        service.run()
        get(settings, "/api/usage", **{"from": "2026-11-01", "format": "csv"})
    store = table_store(settings)
    dumped: list[str] = []
    for name in store.table_names():
        if name.startswith(settings.table_prefix):
            client = store.table_client(name)
            dumped.extend(json.dumps(entity, default=str) for entity in client.list_entities())
    assert dumped, "the run wrote rows"
    everything = "\n".join(dumped) + caplog.text
    for secret in ("ZEBRA-PROMPT", "QUOKKA-ANSWER", "launch codes", TEST_API_KEY):
        assert secret not in everything


def test_error_bodies_carry_no_internals(settings: Settings, azurite) -> None:  # type: ignore[no-untyped-def]
    from shared.tooling.azurite_process import free_port

    broken = settings.with_overrides(TABLES_CONNECTION_STRING=settings.tables_connection_string.replace(  # type: ignore[union-attr]
        f":{azurite.port}/", f":{free_port()}/"))
    responses = [get(broken, "/api/usage"), get(broken, "/api/health"),
                 get(settings.with_overrides(TABLE_PREFIX="bad-prefix"), "/api/usage"),
                 get(settings, "/api/usage", granularity="x" * 5000)]
    for response in responses:
        text = response.text
        assert response.status_code in (400, 500, 503)
        for leak in ("Traceback", "AccountKey", "devstoreaccount1", "DefaultEndpointsProtocol", TEST_API_KEY,
                     "File \"", "azure.core"):
            assert leak not in text, (response.status_code, text)
