"""``chargeback report chargeback`` (the table for people) with two APIM services whose subscriptions
have the same name: each line shows its service, so the two gateways' lines are told apart; with no
service anywhere the table has no service column.  Rows written to Azurite, read back by the command."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.composition import table_store
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.settings import Settings
from shared.tooling.cli import main

HOUR = datetime(2026, 11, 12, 9, tzinfo=UTC)


def rows_at_every_granularity(key: UsageKey, requests: int) -> list[UsageRow]:
    counters = Counters(requests=requests, prompt_tokens=100 * requests, completion_tokens=10 * requests,
                        total_tokens=110 * requests)
    return [UsageRow(granularity, granularity.period_start(HOUR), key, counters) for granularity in Granularity]


def chargeback_lines(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": settings._values}))
    assert main(["--settings", str(path), "report", "chargeback", "--month", "2026-11"]) == 0
    return capsys.readouterr().out.splitlines()


def test_two_services_same_named_subscription_are_two_distinguishable_lines(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table_store(settings).upsert([*rows_at_every_granularity(UsageKey("team-a", "p", "gpt-4o", "chat", "apim-weu"), 3),
                                  *rows_at_every_granularity(UsageKey("team-a", "p", "gpt-4o", "chat", "apim-eus"), 5)])
    out = chargeback_lines(settings, tmp_path, capsys)

    assert "apim service" in out[1]
    team_a = [line for line in out if line.startswith("team-a")]
    assert len(team_a) == 2 and team_a[0] != team_a[1]
    # each line: subscription, service, then its own requests and total tokens
    assert sorted([*line.split()[:3], line.split()[6]] for line in team_a) == [
        ["team-a", "apim-eus", "5", "550"], ["team-a", "apim-weu", "3", "330"]]
    total = next(line for line in out if line.startswith("TOTAL")).split()
    assert total[1:3] == ["8", "800"]  # requests, prompt tokens: both services summed once


def test_without_services_the_table_has_no_service_column(settings: Settings, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    table_store(settings).upsert(rows_at_every_granularity(UsageKey("team-a", "p", "gpt-4o", "chat"), 3))
    out = chargeback_lines(settings, tmp_path, capsys)

    assert "apim service" not in "\n".join(out)
    team_a = [line.split() for line in out if line.startswith("team-a")]
    assert [fields[:2] for fields in team_a] == [["team-a", "3"]]
