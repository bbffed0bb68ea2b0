"""Probe rules: settings, latency percentiles, failure counting and incident opening/recovery."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from shared.core.probe import IncidentState, ProbeAttempt, advance, nearest_rank, summarize
from shared.settings import Settings

T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------
# Pure rules
# ---------------------------------------------------------------------------------------------------
def brute_force_percentile(values: list[float], p: float) -> float:
    """Independent definition: the smallest value v with count(x <= v) / n >= p / 100."""
    n = len(values)
    for v in sorted(set(values)):
        if sum(1 for x in values if x <= v) * 100 >= p * n:
            return v
    raise AssertionError("unreachable")


def attempt(at_minute: int, ok: bool, latency: float, deployment: str = "gpt-4o", mode: str = "chat",
            run: str | None = None, ttft: float | None = None) -> ProbeAttempt:
    return ProbeAttempt(at=T0 + timedelta(minutes=at_minute), deployment=deployment, mode=mode,  # type: ignore[arg-type]
                        success=ok, status=200 if ok else 500, latency_ms=latency, run_id=run or f"r{at_minute}",
                        ttft_ms=ttft)


def test_nearest_rank_textbook_example() -> None:
    # The classic nearest-rank example: 15, 20, 35, 40, 50.
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert [nearest_rank(values, p) for p in (0, 5, 30, 40, 50, 100)] == [15, 15, 20, 20, 35, 50]
    assert nearest_rank([], 50) is None
    assert nearest_rank(list(range(1, 21)), 95) == 19  # exactly rank 19, not 20 (no float drift)
    with pytest.raises(ValueError):
        nearest_rank(values, 101)


def test_nearest_rank_matches_independent_definition() -> None:
    rng = random.Random(7)
    for _ in range(300):
        values = [float(rng.randint(1, 60)) for _ in range(rng.randint(1, 40))]  # with ties
        for p in (0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 100):
            assert nearest_rank(values, p) == brute_force_percentile(values, p), (values, p)


def test_summary_per_deployment() -> None:
    rows = [attempt(0, True, 120), attempt(5, True, 80), attempt(10, False, 9000), attempt(15, True, 100),
            attempt(20, False, 30), attempt(25, False, 31),
            attempt(0, True, 10, "mini"), attempt(5, True, 20, "mini", "stream", ttft=7)]
    summaries = summarize(rows)
    big = summaries["gpt-4o"]
    assert (big.attempts, big.successes, big.availability_pct) == (6, 3, 50.0)
    ok_latencies = [120.0, 80.0, 100.0]  # failed attempts are left out of the latency percentiles
    assert big.latency_p50_ms == brute_force_percentile(ok_latencies, 50) == 100
    assert big.latency_p95_ms == brute_force_percentile(ok_latencies, 95) == 120
    assert big.last_success == T0 + timedelta(minutes=15) and big.last_failure == T0 + timedelta(minutes=25)
    assert big.consecutive_failures == 2
    mini = summaries["mini"]
    assert (mini.availability_pct, mini.consecutive_failures, mini.ttft_p50_ms) == (100.0, 0, 7)


def test_consecutive_failures_count_runs_not_calls() -> None:
    # PROBE_STREAM=both: two calls per run; a run fails when either fails.
    rows = [attempt(0, True, 1, run="a"), attempt(0, True, 1, mode="stream", run="a"),
            attempt(5, True, 1, run="b"), attempt(5, False, 1, mode="stream", run="b"),
            attempt(10, False, 1, run="c"), attempt(10, False, 1, mode="stream", run="c")]
    assert summarize(rows)["gpt-4o"].consecutive_failures == 2


def test_incident_opens_once_and_recovers_once() -> None:
    state, events = IncidentState(), []
    for minute, ok in enumerate([False, False, True, False, False, False, False, False, True, True]):
        state, event = advance(state, ok, T0 + timedelta(minutes=minute), threshold=3, error=None if ok else "500")
        events.append(event)
    assert events == [None, None, None, None, None, "opened", None, None, "recovered", None]
    assert state == IncidentState(last_success=T0 + timedelta(minutes=9), last_failure=T0 + timedelta(minutes=7),
                                  last_error="500", opened_at=T0 + timedelta(minutes=5))  # of the last incident


def test_undelivered_opening_is_not_followed_by_a_recovery() -> None:
    state = IncidentState(consecutive_failures=3, open=True, opened_at=T0, pending="opened")
    state, event = advance(state, True, T0 + timedelta(minutes=5), threshold=3)
    assert event is None and state.pending is None and not state.open


@pytest.mark.parametrize(("key", "value", "prop"), [
    ("PROBE_ENDPOINT", "apim.azure-api.net", "probe_endpoint"),
    ("PROBE_KEY_HEADER", "x-key", "probe_key_header"),
    ("PROBE_STREAM", "sometimes", "probe_stream"),
    ("PROBE_MAX_RETRIES", "6", "probe_max_retries"),
    ("PROBE_TIMEOUT_SECONDS", "0", "probe_timeout_seconds"),
    ("PROBE_BUDGET_SECONDS", "541", "probe_budget_seconds"),
    ("PROBE_FAILURE_THRESHOLD", "x", "probe_failure_threshold"),
    ("PROBE_MARKER_HEADER", "x probe", "probe_marker_header"),
    ("PROBE_DEPLOYMENTS", "gpt-4o,a/b", "probe_deployments"),
])
def test_malformed_probe_settings_name_their_key(key: str, value: str, prop: str) -> None:
    from shared.errors import SettingError

    with pytest.raises(SettingError) as info:
        getattr(Settings({key: value}), prop)
    assert info.value.key == key


def test_probe_setting_defaults() -> None:
    s = Settings({"PROBE_DEPLOYMENTS": " gpt-4o, ,gpt-4o-mini,gpt-4o ",
                  "PROBE_KEY_HEADER": "ocp-apim-subscription-key"})
    assert s.probe_deployments == ("gpt-4o", "gpt-4o-mini") and s.probe_key_header == "Ocp-Apim-Subscription-Key"
    assert (s.probe_stream, s.probe_timeout_seconds, s.probe_max_retries, s.probe_budget_seconds,
            s.probe_failure_threshold, s.probe_marker_header) == ("false", 10.0, 1, 120.0, 3, "x-chargeback-probe")
    assert Settings({}).probe_deployments == ()
