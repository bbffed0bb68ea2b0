"""The synthetic probe: pure rules (nearest-rank percentiles, summaries, incidents), and the real
probe (``openai`` client) against the dev gateway over loopback, with results in Azurite."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.adapters.probe_client import OpenAIProber, ProbeTarget
from shared.api.app import AppContext, create_app
from shared.composition import probe_service, probe_store
from shared.core.probe import ProbeAttempt
from shared.services.probe import Incident, ProbeService
from shared.settings import Settings
from shared.tooling.cli import main
from shared.tooling.dev_gateway import PROBE_KEY, DevGateway, Faults, GatewayConfig
from tests.conftest import TEST_API_KEY
from tests.unit.test_probe_rules import brute_force_percentile


# ---------------------------------------------------------------------------------------------------
# Against the dev gateway, for real over loopback
# ---------------------------------------------------------------------------------------------------
def config(probe_tpm: int = 100000) -> GatewayConfig:
    return GatewayConfig.from_dict({"keys": {
        PROBE_KEY: {"subscription": "chargeback-probe", "product": "monitoring", "tpm": probe_tpm},
        "team-key": {"subscription": "team-a", "product": "p1", "tpm": 100000}}})


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[DevGateway]:
    with DevGateway(config(), tmp_path / "gateway.duckdb") as gw:
        yield gw


def prober(gw: DevGateway, **overrides: object) -> OpenAIProber:
    target = ProbeTarget(endpoint=gw.url, api_version="2024-10-21", subscription_key=PROBE_KEY,
                         timeout_seconds=2.0, max_retries=0)
    return OpenAIProber(ProbeTarget(**{**target.__dict__, **overrides}))


def probe_once(p: OpenAIProber, mode: str = "chat", budget: float = 5.0, deployment: str = "gpt-4o") -> ProbeAttempt:
    return p.probe(deployment, mode, time.monotonic() + budget, "test-run")  # type: ignore[arg-type]


@pytest.mark.parametrize("key_header", ["api-key", "Ocp-Apim-Subscription-Key"])
def test_probe_success(gateway: DevGateway, key_header: str) -> None:
    result = probe_once(prober(gateway, key_header=key_header))
    assert result.success and result.status == 200 and result.error is None and result.tries == 1
    assert result.model == "gpt-4o-2024-08-06" and result.region == "Local Dev"
    assert result.prompt_tokens == 30 and result.completion_tokens == 5  # the fixed prompt, max_tokens 5
    assert result.request_id and 0 < result.latency_ms < 2000 and result.ttft_ms is None


def test_probe_streaming_measures_time_to_first_token(gateway: DevGateway) -> None:
    gateway.set_faults(Faults(first_token_delay_seconds=0.3, chunk_delay_seconds=0.05))
    result = probe_once(prober(gateway), "stream")
    assert result.success and result.status == 200
    assert result.ttft_ms is not None and result.ttft_ms >= 300  # no absolute upper bound: CI load varies
    assert result.latency_ms >= result.ttft_ms + 4 * 50  # four more tokens, 50 ms apart
    assert (result.prompt_tokens, result.completion_tokens) == (30, 5)  # the include_usage chunk


def test_probe_bad_key_is_401(gateway: DevGateway) -> None:
    result = probe_once(prober(gateway, subscription_key="wrong-key", max_retries=2))
    assert (result.success, result.status, result.error, result.tries) == (False, 401, "AuthenticationError", 1)


def test_probe_over_the_token_limit_is_429(tmp_path: Path) -> None:
    with DevGateway(config(probe_tpm=50), tmp_path / "ws.duckdb") as gw:
        p = prober(gw, max_retries=1)
        assert probe_once(p).success  # 35 of 50 tokens this minute
        started = time.monotonic()
        result = probe_once(p, budget=3.0)
    assert (result.success, result.status, result.error) == (False, 429, "RateLimitError")
    # Retry-After (about 60 s) does not fit the budget: no retry, no waiting.
    assert result.tries == 1 and time.monotonic() - started < 1.0


def test_probe_server_error_is_retried_then_reported(gateway: DevGateway) -> None:
    gateway.set_faults(Faults(status=500))
    result = probe_once(prober(gateway, max_retries=2))
    assert (result.success, result.status, result.error, result.tries) == (False, 500, "InternalServerError", 3)
    gateway.set_faults(Faults(status=503, deployments=("gpt-4o-mini",)))  # faults can target one deployment
    assert probe_once(prober(gateway)).success


def test_probe_timeout(gateway: DevGateway) -> None:
    gateway.set_faults(Faults(delay_seconds=3))
    started = time.monotonic()
    result = probe_once(prober(gateway, timeout_seconds=0.3, max_retries=1))
    elapsed = time.monotonic() - started
    assert (result.success, result.status, result.error, result.tries) == (False, None, "APITimeoutError", 2)
    assert 0.3 <= result.latency_ms / 1000 < 1.0 and elapsed < 1.5  # two 0.3 s tries and a 0.25 s back-off


def test_slow_stream_is_cut_at_the_deadline(gateway: DevGateway) -> None:
    gateway.set_faults(Faults(chunk_delay_seconds=0.4))
    started = time.monotonic()
    result = probe_once(prober(gateway, timeout_seconds=5), "stream", budget=0.6)
    assert time.monotonic() - started < 1.2  # bounded by the budget, not by the 5 s timeout
    assert not result.success and result.error in ("ProbeDeadlineExceeded", "APITimeoutError")


class RecordingNotifier:
    def __init__(self) -> None:
        self.events: list[tuple[str, Incident]] = []

    def opened(self, incident: Incident) -> None:
        self.events.append(("opened", incident))

    def recovered(self, incident: Incident) -> None:
        self.events.append(("recovered", incident))


def test_incident_once_and_recovery_once_across_instances(gateway: DevGateway, settings: Settings) -> None:
    notifier = RecordingNotifier()

    def instance() -> ProbeService:  # a fresh process: new client, new store, state only in Azurite
        return ProbeService(prober(gateway), probe_store(settings), notifier, deployments=["gpt-4o", "gpt-4o-mini"],
                            failure_threshold=3, budget_seconds=10)

    a, b = instance(), instance()
    gateway.set_faults(Faults(status=500, deployments=("gpt-4o",)))
    for service in (a, b, a):  # third failure: opened, once
        service.run()
    assert [(e, i.deployment, i.consecutive_failures) for e, i in notifier.events] == [("opened", "gpt-4o", 3)]
    for service in (b, a):  # still failing: no new alert from either instance
        service.run()
    assert len(notifier.events) == 1
    gateway.set_faults(None)
    result = b.run()
    assert result.events == [("gpt-4o", "recovered")]
    a.run()
    assert [e for e, _ in notifier.events] == ["opened", "recovered"]
    assert notifier.events[1][1].recovered_at is not None
    state, _ = probe_store(settings).get_state("gpt-4o")
    assert not state.open and state.pending is None and state.consecutive_failures == 0


def test_failed_notification_is_delivered_by_the_next_run(gateway: DevGateway, settings: Settings) -> None:
    class Flaky(RecordingNotifier):
        broken = True

        def opened(self, incident: Incident) -> None:
            if self.broken:
                raise ConnectionError("channel down")
            super().opened(incident)

    notifier = Flaky()
    service = ProbeService(prober(gateway), probe_store(settings), notifier, deployments=["gpt-4o"],
                           failure_threshold=1)
    gateway.set_faults(Faults(status=500))
    service.run()
    assert notifier.events == [] and probe_store(settings).get_state("gpt-4o")[0].pending == "opened"
    notifier.broken = False
    service.run()
    service.run()
    assert [e for e, _ in notifier.events] == ["opened"]


def test_probe_api_and_settings_wiring(gateway: DevGateway, settings: Settings) -> None:
    probe_settings = settings.with_overrides(PROBE_ENDPOINT=gateway.url, PROBE_SUBSCRIPTION_KEY=PROBE_KEY,
                                             PROBE_DEPLOYMENTS="gpt-4o, gpt-4o-mini", PROBE_STREAM="both",
                                             PROBE_MAX_RETRIES="0")
    service = probe_service(probe_settings)
    for fault in (None, Faults(status=500, deployments=("gpt-4o-mini",)), None, Faults(delay_seconds=0.2)):
        gateway.set_faults(fault)
        result = service.run()
    service.close()
    assert len(result.attempts) == 4 and all(a.success for a in result.attempts)

    async def calls() -> tuple[dict[str, Any], dict[str, Any], int, int]:
        app = create_app(AppContext(lambda: probe_settings))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                     headers={"x-api-key": TEST_API_KEY}) as client:
            everything = (await client.get("/api/probes")).json()
            mini = (await client.get("/api/probes", params={"deployment": "gpt-4o-mini"})).json()
            bad = (await client.get("/api/probes", params={"from": "yesterday"})).status_code
            anonymous = (await client.get("/api/probes", headers={"x-api-key": "nope"})).status_code
            return everything, mini, bad, anonymous

    body, only_mini, bad, anonymous = asyncio.run(calls())
    assert (bad, anonymous) == (400, 401)
    attempts = body["attempts"]
    assert len(attempts) == 16 and {a["mode"] for a in attempts} == {"chat", "stream"}
    assert {a["deployment"] for a in only_mini["attempts"]} == {"gpt-4o-mini"}
    for summary in body["deployments"]:  # recomputed here from the returned attempts
        mine = [a for a in attempts if a["deployment"] == summary["deployment"]]
        ok = [a for a in mine if a["success"]]
        assert summary["attempts"] == len(mine) == 8
        assert summary["availabilityPct"] == round(100 * len(ok) / len(mine), 2)
        assert summary["latencyP50Ms"] == brute_force_percentile([a["latencyMs"] for a in ok], 50)
        assert summary["latencyP95Ms"] == brute_force_percentile([a["latencyMs"] for a in ok], 95)
        assert summary["ttftP95Ms"] == brute_force_percentile([a["ttftMs"] for a in ok if a["mode"] == "stream"], 95)
        assert summary["lastSuccess"] == max(a["at"] for a in ok)
        assert summary["consecutiveFailures"] == 0
    mini = next(s for s in body["deployments"] if s["deployment"] == "gpt-4o-mini")
    assert mini["availabilityPct"] == 75.0 and mini["incident"]["open"] is False
    slow = [a["latencyMs"] for a in attempts if a["runId"] == result.run_id]  # the run with a 0.2 s delay
    assert len(slow) == 4 and min(slow) >= 200


def test_cli_probe(gateway: DevGateway, settings: Settings, tmp_path: Path,
                   capsys: pytest.CaptureFixture[str]) -> None:
    import json

    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {**settings._values, "PROBE_SUBSCRIPTION_KEY": PROBE_KEY,
                                           "PROBE_ENDPOINT": gateway.url, "PROBE_MAX_RETRIES": "0"}}))
    assert main(["--settings", str(path), "probe", "--deployment", "gpt-4o", "--stream", "both"]) == 0
    out = capsys.readouterr().out
    assert "gpt-4o" in out and "stream" in out and "2 calls, 0 failed" in out
    gateway.set_faults(Faults(status=503))
    assert main(["--settings", str(path), "probe", "--deployment", "gpt-4o"]) == 1
    assert "InternalServerError" in capsys.readouterr().out
    assert main(["--settings", str(path), "probe"]) == 1  # PROBE_DEPLOYMENTS empty: nothing to probe
    assert "PROBE_DEPLOYMENTS" in capsys.readouterr().err


def test_probe_timer_function(gateway: DevGateway, settings: Settings, monkeypatch: pytest.MonkeyPatch,
                              caplog: pytest.LogCaptureFixture) -> None:
    from azure.functions.timer import TimerRequest

    from shared.triggers.probe_timer import probe


    environment = {**settings._values, "PROBE_ENDPOINT": gateway.url, "PROBE_SUBSCRIPTION_KEY": PROBE_KEY,
                   "PROBE_DEPLOYMENTS": "", "PROBE_STREAM": "true", "PROBE_MAX_RETRIES": "0"}
    for key, value in environment.items():  # the function reads the process environment, as in Azure
        monkeypatch.setenv(key, value)
    # The decorated function as the host calls it (function_app is indexed once, in test_functions).
    timer = probe._function.get_user_function()
    with caplog.at_level("INFO"):
        timer(TimerRequest())
        assert "probe is off" in caplog.text
        monkeypatch.setenv("PROBE_DEPLOYMENTS", "gpt-4o")
        timer(TimerRequest(past_due=True))
    assert "past due" in caplog.text and "1 calls, 0 failed" in caplog.text
    (stored,) = probe_store(settings).attempts(None, datetime.now(UTC) - timedelta(minutes=5), datetime.now(UTC))
    assert stored.mode == "stream" and stored.success and stored.ttft_ms is not None


def test_incidents_reach_the_alert_channels_through_composition(gateway: DevGateway, settings: Settings) -> None:
    """PROBE_* + ALERT_* settings: the probe's incident goes to Teams and the JSON webhook, once."""
    from shared.composition import probe_service
    from tests.billing_support import Receiver

    with Receiver() as receiver:
        configured = settings.with_overrides(
            PROBE_ENDPOINT=gateway.url, PROBE_SUBSCRIPTION_KEY=PROBE_KEY, PROBE_DEPLOYMENTS="gpt-4o",
            PROBE_FAILURE_THRESHOLD="2", PROBE_MAX_RETRIES="0",
            ALERT_TEAMS_URLS=receiver.url("/teams"), ALERT_WEBHOOK_URLS=receiver.url("/hook"))
        receiver.status["/hook"] = 503  # the webhook is down at first
        gateway.set_faults(Faults(status=500))
        for _ in range(3):
            probe_service(configured).run()
        teams = receiver.bodies("/teams")
        assert len(teams) >= 1
        card = teams[0]["attachments"][0]["content"]
        assert card["type"] == "AdaptiveCard" and "gpt-4o" in card["body"][0]["text"]
        refused = len(receiver.bodies("/hook"))
        assert refused >= 1  # tried, refused with 503, kept pending
        receiver.status["/hook"] = 200
        probe_service(configured).run()  # still failing: the pending notification goes out now
        hooks = receiver.bodies("/hook")[refused:]
        assert [h["event"] for h in hooks] == ["opened"]
        gateway.set_faults(None)
        probe_service(configured).run()
        hooks = receiver.bodies("/hook")[refused:]
        assert [h["event"] for h in hooks] == ["opened", "recovered"]
        assert hooks[0]["incidentId"] == hooks[1]["incidentId"]
        assert "api-key" not in json.dumps(hooks) and PROBE_KEY not in json.dumps(hooks)
