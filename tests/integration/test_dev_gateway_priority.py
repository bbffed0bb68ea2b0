"""The dev gateway answers the service tier a chat request asks for (``service_tier: "priority"`` ->
``"priority"``, another -> ``"default"``, none -> no key), in the body and every chunk, and a local
rollup of its logs keeps the priority requests in rows of their own."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from openai import AzureOpenAI

from shared.composition import rollup_service, table_store
from shared.core.usage import Granularity
from shared.settings import Settings
from shared.tooling.dev_gateway import DevGateway, GatewayConfig
from tests.integration.test_dev_gateway import API_VERSION, KEYS, rows


def chat(client: AzureOpenAI, tier: str | None, stream: bool) -> str | None:
    extra = {"extra_body": {"service_tier": tier}} if tier is not None else {}
    if stream:
        chunks: Iterator[object] = iter(client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=3, stream=True,
            stream_options={"include_usage": True}, **extra))  # type: ignore[call-overload]
        tiers = {getattr(chunk, "service_tier", None) for chunk in chunks}
        assert len(tiers) == 1, tiers  # every chunk says the same
        return tiers.pop()
    done = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}],
                                          max_tokens=3, **extra)  # type: ignore[call-overload]
    return getattr(done, "service_tier", None)


def test_priority_requests_are_answered_and_rolled_up_apart(settings: Settings) -> None:
    started = datetime.now(UTC)
    with DevGateway(GatewayConfig.from_dict({"keys": KEYS}), settings.local_workspace_path) as gw:
        with AzureOpenAI(azure_endpoint=gw.url, api_key="key-team-a", api_version=API_VERSION, max_retries=0,
                         timeout=10) as client:
            answered = [chat(client, tier, stream) for tier, stream in (
                ("priority", False), ("priority", True), ("default", False), ("auto", True), (None, False))]
        logged = rows(gw, "ApiManagementGatewayLogs")
    assert answered == ["priority", "priority", "default", "default", None]
    bodies = [row["BackendResponseBody"] for row in logged]
    assert json.loads(bodies[0])["service_tier"] == "priority" and '"service_tier"' not in bodies[4]

    rollup_service(settings).backfill(started - timedelta(hours=1), started + timedelta(hours=1))
    stored = table_store(settings).read("team-a", Granularity.HOUR, started - timedelta(hours=1),
                                        started + timedelta(hours=1))
    requests: Counter[str] = Counter()
    for row in stored:
        requests[row.key.service_tier] += row.counters.requests
    assert requests == {"priority": 2, "": 3}
