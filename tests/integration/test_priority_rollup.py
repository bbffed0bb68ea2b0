"""Priority processing end to end: logged bodies whose responses say ``"service_tier": "priority"`` (chat
JSON, the last chunk of a chat stream, a Responses API stream's response.completed) rolled up through the
real query (DuckDB + duckdb-kql) into Azurite as rows of their own, and charged at a Priority meter price.

Each request's tier and counts are written out below, by hand: the stored rows must split exactly as that
table says (and as the independent oracle, tests/expected.py ``by_tier``, parses the bodies).  A response
saying "default", saying nothing, or echoing ``service_tier: "priority"`` only inside tool arguments or
metadata is default tier.  The shipped feed rows hold no Priority meter, so three are built here in the
Retail Prices API's shape from the real gpt-4o Global rows (their amounts are test values), synced by
``chargeback prices sync`` from a loopback feed; the expected costs are computed here from those prices.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.composition import table_store
from shared.core.usage import Granularity, UsageRow
from shared.settings import Settings
from shared.tooling.cli import main
from shared.tooling.demo import demo_data
from tests import provider_bodies as bodies
from tests.billing_support import ADMIN_KEY, call
from tests.conftest import DEMO_END
from tests.expected import expected_hourly, rollup_to
from tests.integration.test_costing_wired import Feed
from tests.integration.test_rollup import service, write_workspace

HOUR = DEMO_END - timedelta(hours=2)
START = DEMO_END - timedelta(hours=6)
NOW = DEMO_END + timedelta(days=12)  # December: November is a closed month
MODEL = "gpt-4o-2024-08-06"
CHAT = "https://apim.example.net/openai/deployments/chat/chat/completions?api-version=2025-01-01-preview"
RESPONSES = "https://apim.example.net/openai/v1/responses"
M = Decimal(1_000_000)
# gpt-4o 2024-08-06 Global, eastus2, per 1M tokens: the real feed's standard rows, and the Priority rows
# built below (test values).
STANDARD = {"input": Decimal("2.50"), "cached": Decimal("1.25"), "output": Decimal("10.00")}
PRIORITY = {"input": Decimal("5.00"), "cached": Decimal("2.50"), "output": Decimal("20.00")}
PRIORITY_ROWS = (("gpt-4o-0806-Inp-glbl Tokens", "gpt 4o 0806 pp Inp glbl Tokens", "0.005"),
                 ("gpt 4o 0806 cached Inp glbl Tokens", "gpt 4o 0806 pp cached Inp glbl Tokens", "0.0025"),
                 ("gpt-4o-0806-Outp-glbl Tokens", "gpt 4o 0806 pp Outp glbl Tokens", "0.02"))


@dataclass(frozen=True)
class Call:
    subscription: str
    tier: str  # what the response's own service_tier says ("" = default, or not said)
    prompt: int  # billed prompt tokens (from the LLM log where it has counts)
    cached: int
    completion: int
    body: str | None
    url: str = CHAT
    code: int = 200
    llm: dict[str, Any] | None = None  # the LLM log row's counts / names, when it has one


def chat(prompt: int, cached: int, completion: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


def responses(prompt: int, cached: int, completion: int) -> dict[str, Any]:
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + completion}


NAMES_ONLY = {"ModelName": MODEL, "DeploymentName": "chat"}  # the LLM log names the deployment, no counts
CALLS = (
    Call("team-a", "priority", 1000, 200, 100, bodies.azure_chat(MODEL, chat(1000, 200, 100), service_tier="priority")),
    Call("team-a", "priority", 3000, 0, 300, bodies.azure_chat(MODEL, chat(3000, 0, 300), service_tier="priority")),
    Call("team-a", "", 500, 0, 50, bodies.azure_chat(MODEL, chat(500, 0, 50), service_tier="default")),
    Call("team-a", "priority", 2000, 1024, 400,
         bodies.azure_chat_stream(MODEL, chat(2000, 1024, 400), service_tier="priority")),
    Call("team-a", "", 700, 0, 70, bodies.azure_chat_stream(MODEL, chat(700, 0, 70))),
    Call("team-b", "priority", 4000, 2048, 600,
         bodies.responses_stream(MODEL, responses(4000, 2048, 600), service_tier="priority"), RESPONSES,
         llm=NAMES_ONLY),
    Call("team-b", "", 100, 0, 10, bodies.responses_stream(MODEL, responses(100, 0, 10), service_tier="default"),
         RESPONSES, llm=NAMES_ONLY),
    # the request's metadata echoed in the response object says priority; the response's own tier: default
    Call("team-b", "", 300, 0, 30,
         bodies.responses_stream(MODEL, responses(300, 0, 30), service_tier="default", echo_tier=True), RESPONSES,
         llm=NAMES_ONLY),
    # tool arguments and metadata echo "service_tier": "priority"; the response itself says default
    Call("team-c", "", 900, 0, 90,
         bodies.azure_chat(MODEL, chat(900, 0, 90), service_tier="default", echo_tier=True)),
    # ... or says nothing at all
    Call("team-c", "", 800, 0, 80, bodies.azure_chat(MODEL, chat(800, 0, 80), echo_tier=True)),
    # counted from the LLM log (its counts win), served at priority as its body says
    Call("team-c", "priority", 1500, 0, 150,
         bodies.azure_chat(MODEL, chat(1490, 0, 160), service_tier="priority"),
         llm={**NAMES_ONLY, "PromptTokens": 1500, "CompletionTokens": 150, "TotalTokens": 1650}),
    Call("team-c", "", 0, 0, 0, None, code=429),
)


def traffic() -> demo_data.DemoTraffic:
    out = demo_data.DemoTraffic()
    for n, c in enumerate(CALLS):
        correlation = f"tier-{n:02d}"
        out.gateway.append({"TimeGenerated": HOUR + timedelta(seconds=n), "CorrelationId": correlation,
                            "ApimSubscriptionId": c.subscription, "ProductId": "p",
                            "OperationId": "Responses_Create" if c.url == RESPONSES else "ChatCompletions_Create",
                            "Url": c.url, "ResponseCode": c.code, "BackendResponseBody": c.body})
        if c.llm is not None:
            out.llm.append({"TimeGenerated": HOUR + timedelta(seconds=n, milliseconds=500),
                            "CorrelationId": correlation, "SequenceNumber": 0, "IsStreamCompletion": False, **c.llm})
    return out


def hand_counts() -> dict[tuple[str, str], dict[str, int]]:
    """Per (subscription, tier): requests and tokens, summed from the table above (no body parsed)."""
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(
        ("requests", "prompt", "cached", "completion"), 0))
    for c in CALLS:
        sums = out[(c.subscription, c.tier)]
        sums["requests"] += 1
        sums["prompt"] += c.prompt
        sums["cached"] += c.cached
        sums["completion"] += c.completion
    return dict(out)


def hand_cost(counts: dict[str, int], prices: dict[str, Decimal]) -> Decimal:
    return ((counts["prompt"] - counts["cached"]) * prices["input"] + counts["cached"] * prices["cached"]
            + counts["completion"] * prices["output"]) / M


@pytest.fixture
def admin(settings: Settings) -> Settings:
    write_workspace(settings.local_workspace_path, traffic())
    return settings.with_overrides(ADMIN_API_KEY=ADMIN_KEY)


@pytest.fixture
def feed() -> Iterator[Feed]:
    """The 27 real feed rows plus three gpt-4o Global Priority ("pp") rows in the feed's shape."""
    served = Feed()
    real = {row["meterName"]: row for row in served.items}
    served.items += [{**real[source], "meterName": name, "skuName": name.removesuffix(" Tokens"),
                      "meterId": f"test-{name}", "retailPrice": float(price), "unitPrice": float(price)}
                     for source, name, price in PRIORITY_ROWS]
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


def stored(settings: Settings, granularity: Granularity) -> dict[tuple[Any, ...], dict[str, int]]:
    rows: list[UsageRow] = table_store(settings).read_all(granularity, START - timedelta(days=40),
                                                          DEMO_END + timedelta(days=40))
    out = {}
    for r in rows:
        key = (r.period_start, r.key.subscription_id, r.key.product_id, r.key.model, r.key.deployment,
               r.key.service_tier)
        assert key not in out and r.key.apim_service == ""
        out[key] = r.counters.as_dict()
    return out


def test_rows_split_by_the_tier_the_responses_report(admin: Settings) -> None:
    service(admin, DEMO_END).backfill(START, DEMO_END)
    hours = stored(admin, Granularity.HOUR)
    assert hours == expected_hourly(traffic().gateway, traffic().llm, START, DEMO_END, by_tier=True)
    assert stored(admin, Granularity.MONTH) == rollup_to(hours, "month")
    by_tier: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for key, c in stored(admin, Granularity.MONTH).items():  # the 429 is a row of model "unknown"
        sums = by_tier[(key[1], key[5])]
        for at, name in enumerate(("requests", "prompt_tokens", "cached_tokens", "completion_tokens")):
            sums[at] += c[name]
    assert dict(by_tier) == {key: [c["requests"], c["prompt"], c["cached"], c["completion"]]
                             for key, c in hand_counts().items()}
    # the split is real: each subscription has rows of both tiers of one model and deployment
    month = stored(admin, Granularity.MONTH)
    for subscription in ("team-a", "team-b", "team-c"):
        tiers = {key[5] for key in month if key[1] == subscription and key[3:5] == (MODEL, "chat")}
        assert tiers == {"", "priority"}, subscription


def test_the_chargeback_prices_priority_rows_at_the_priority_meter(admin: Settings, tmp_path: Path,
                                                                  feed: Feed) -> None:
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(json.dumps({"Values": admin._values}))
    args = ["--settings", str(settings_file)]
    assert main([*args, "prices", "sync", "--feed-url", feed.url]) == 0
    assert main([*args, "deployments", "set", "chat", "--model", "gpt-4o", "--version", "2024-08-06", "--sku",
                 "GlobalStandard", "--region", "eastus2", "--from", "2026-10-01"]) == 0
    service(admin, DEMO_END).backfill(START, DEMO_END)
    expected = {key: hand_cost(c, PRIORITY if key[1] == "priority" else STANDARD) for key, c in hand_counts().items()}
    assert expected[("team-a", "priority")] == (4776 * Decimal(5) + 1224 * Decimal("2.5") + 800 * Decimal(20)) / M

    document = call(admin, "GET", "/api/chargeback?month=2026-11", now=NOW).json()
    lines = {(ln["subscriptionId"], ln["serviceTier"]): ln for ln in document["subscriptions"]}
    assert {key: Decimal(ln["cost"]) for key, ln in lines.items()} == expected
    assert all(ln["unpricedTokens"] == 0 and ln["costBasis"] == "payg" for ln in lines.values())
    assert Decimal(lines[("team-b", "priority")]["costCachedInput"]) == 2048 * Decimal("2.50") / M
    assert Decimal(document["totals"]["cost"]) == sum(expected.values())

    text = call(admin, "GET", "/api/chargeback?month=2026-11&format=csv", now=NOW).text
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames is not None and reader.fieldnames[-1] == "serviceTier"
    assert {(r["subscriptionId"], r["serviceTier"]): Decimal(r["cost"]) for r in reader} == expected

    month = "/api/usage?from=2026-11-01&to=2026-11-30&granularity=month"
    usage = call(admin, "GET", f"{month}&groupBy=subscription,serviceTier", now=NOW).json()
    assert {(r["subscriptionId"], r["serviceTier"]): Decimal(r["cost"]) for r in usage["rows"]} == expected
    # grouped by deployment, the tier comes along (after the APIM service, the last columns)
    csv_rows = list(csv.DictReader(io.StringIO(call(
        admin, "GET", f"{month}&groupBy=subscription,deployment&format=csv", now=NOW).text)))
    assert list(csv_rows[0])[-2:] == ["apimService", "serviceTier"]
    assert {(r["subscriptionId"], r["serviceTier"]): r["requests"] for r in csv_rows} == {
        key: str(c["requests"]) for key, c in hand_counts().items()}
    per_tier = call(admin, "GET", f"{month}&groupBy=serviceTier", now=NOW).json()["rows"]
    assert {r["serviceTier"]: Decimal(r["cost"]) for r in per_tier} == {
        tier: sum(cost for key, cost in expected.items() if key[1] == tier) for tier in ("", "priority")}

    focus = list(csv.DictReader(io.StringIO(call(admin, "GET", "/api/chargeback?month=2026-11&format=focus",
                                                 now=NOW).text)))
    priority = [r for r in focus if r["x_BillingMode"] == "priority"]
    assert {r["SkuPriceId"] for r in priority} == {f"test-{name}" for _, name, _ in PRIORITY_ROWS}
    assert {(r["x_TokenKind"], Decimal(r["ListUnitPrice"])) for r in priority} == {
        ("input", PRIORITY["input"]), ("cached_input", PRIORITY["cached"]), ("output", PRIORITY["output"])}
    assert all("priority" in r["SkuMeter"] for r in priority)
    assert sum(Decimal(r["BilledCost"]) for r in priority) == sum(
        cost for key, cost in expected.items() if key[1] == "priority")


def test_priority_rows_without_a_priority_meter_are_unpriced_never_standard(admin: Settings, tmp_path: Path) -> None:
    """The shipped price rows have no Priority meter: the priority lines are unpriced, named, cost 0."""
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(json.dumps({"Values": admin._values}))
    assert main(["--settings", str(settings_file), "deployments", "set", "chat", "--model", "gpt-4o", "--version",
                 "2024-08-06", "--sku", "GlobalStandard", "--region", "eastus2", "--from", "2026-10-01"]) == 0
    service(admin, DEMO_END).backfill(START, DEMO_END)
    lines = {(ln["subscriptionId"], ln["serviceTier"]): ln
             for ln in call(admin, "GET", "/api/chargeback?month=2026-11", now=NOW).json()["subscriptions"]}
    counts = hand_counts()
    for key, line in lines.items():
        if key[1] == "priority":
            assert Decimal(line["cost"]) == 0
            assert line["unpricedTokens"] == counts[key]["prompt"] + counts[key]["completion"]
            assert any("priority" in meter for meter in line["unpricedMeters"]), line["unpricedMeters"]
        else:
            assert Decimal(line["cost"]) == hand_cost(counts[key], STANDARD) and line["unpricedTokens"] == 0
