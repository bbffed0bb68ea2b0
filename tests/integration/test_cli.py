"""``chargeback`` commands end to end: demo data -> backfill -> rows read back from Azurite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.composition import table_store
from shared.core.usage import Granularity
from shared.settings import Settings
from shared.tooling.cli import main


@pytest.fixture
def settings_file(tmp_path: Path, settings: Settings) -> Path:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {**settings._values, "LOCAL_WORKSPACE_PATH": "ws/demo.duckdb"}}))
    return path


def test_demo_data_then_backfill(settings_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--settings", str(settings_file), "demo-data", "--days", "2", "--seed", "5"]) == 0
    assert (settings_file.parent / "ws" / "demo.duckdb").is_file()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=2)
    assert main(["--settings", str(settings_file), "rollup", "--from", start.isoformat(), "--to", end.isoformat()]) == 0
    out = capsys.readouterr()
    assert "2 queries" in out.out  # 48 whole hours in 24-hour chunks
    assert "backfill" in out.err  # the progress bar
    settings = Settings.from_environment({}, local_settings=settings_file)
    days = table_store(settings).read_all(Granularity.DAY, start - timedelta(days=1), end + timedelta(days=1))
    hours = table_store(settings).read_all(Granularity.HOUR, start, end + timedelta(hours=1))
    assert days and sum(r.counters.total_tokens for r in days) == sum(r.counters.total_tokens for r in hours)


def test_same_seed_same_workspace(tmp_path: Path, settings_file: Path) -> None:
    import duckdb

    digests = []
    for name in ("a.duckdb", "b.duckdb"):
        path = tmp_path / name
        main(["--settings", str(settings_file), "demo-data", "--days", "1", "--path", str(path)])
        con = duckdb.connect(str(path), read_only=True)
        digests.append(con.sql('SELECT count(*), sum(TotalTime), min(CorrelationId) FROM ApiManagementGatewayLogs')
                       .fetchall())
        con.close()
    assert digests[0] == digests[1]


@pytest.mark.parametrize("args", [["rollup", "--from", "2026-11-02"],
                                  ["rollup", "--from", "2026-11-02", "--to", "2026-11-01"]])
def test_bad_backfill_arguments_exit_2(settings_file: Path, args: list[str],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--settings", str(settings_file), *args]) == 2
    assert "--from" in capsys.readouterr().err


def test_failure_exits_1_with_a_message(settings_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--settings", str(settings_file), "rollup"]) == 1  # no workspace yet
    assert "chargeback demo-data" in capsys.readouterr().err


def test_queries_check_command(settings_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--settings", str(settings_file), "queries", "check"]) == 0
    out = capsys.readouterr().out
    assert "usage_by_subscription.kql" in out and "TotalTokens" in out


def test_local_run_summary_shows_cost(settings: Settings, tmp_path: Path) -> None:
    """The local run's per-subscription table prices each day at its own price (EUR test file)."""
    from decimal import Decimal

    from shared.core.usage import Counters, UsageKey, UsageRow
    from shared.tooling.demo.demo_run import summary_table
    from tests.billing_support import ALPHA_NEW, ALPHA_OLD, expected_cost, with_prices

    priced = with_prices(settings, tmp_path)
    rows = [UsageRow(Granularity.DAY, datetime(2026, 11, day, tzinfo=UTC), UsageKey("team-x", "", "alpha", "d"),
                     Counters(requests=1, prompt_tokens=1_000_000, cached_tokens=200_000, completion_tokens=10_000,
                              total_tokens=1_010_000)) for day in (15, 16)]
    rows.append(UsageRow(Granularity.DAY, datetime(2026, 11, 16, tzinfo=UTC), UsageKey("team-y", "", "nope", "d"),
                         Counters(requests=1, prompt_tokens=5, total_tokens=5)))
    table_store(priced).upsert(rows)
    text = summary_table(priced, datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    want = (expected_cost(1_000_000, 200_000, 10_000, ALPHA_OLD)
            + expected_cost(1_000_000, 200_000, 10_000, ALPHA_NEW)).quantize(Decimal("0.01"))
    team_x = next(line for line in text.splitlines() if line.startswith("team-x"))
    assert team_x.split()[-1] == str(want) and "cost EUR" in text
    assert next(line for line in text.splitlines() if line.startswith("team-y")).endswith("*")
    assert "without a price" in text
