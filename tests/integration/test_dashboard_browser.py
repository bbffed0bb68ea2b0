"""The dashboard in a real headless Chromium (Debian's, driven by playwright-core from
tests/browser/dashboard.mjs): the app served by uvicorn on 127.0.0.1 against Azurite with seeded
rows, quotas and probe attempts; the numbers shown are checked against the API; the date range is
changed; a screenshot goes to test-artifacts/dashboard.png."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.api.app import AppContext, create_app
from shared.composition import probe_store, quota_store, table_store
from shared.core.probe import ProbeAttempt
from shared.core.quotas import make_quota
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge
from shared.settings import Settings
from shared.tooling.azurite_process import free_port
from tests.conftest import TEST_API_KEY

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = ROOT / "test-artifacts" / "dashboard.png"
KEYS = (  # subscription, product, model, deployment, weight
    ("team-search", "enterprise", "gpt-4o", "gpt-4o", 9),
    ("team-search", "enterprise", "gpt-4o-mini", "gpt-4o-mini", 5),
    ("team-chat", "standard", "gpt-4o-mini", "gpt-4o-mini", 7),
    ("team-analytics", "enterprise", "gpt-4.1", "gpt-4.1", 4),
    ("team-analytics", "enterprise", "text-embedding-3-small", "embeddings", 6),
    ("team-support", "standard", "gpt-4o-mini", "gpt-4o-mini", 3),
    ("team-labs", "standard", "o4-mini", "o4-mini", 2),
    ("unattributed", "", "gpt-4o-mini", "gpt-4o-mini", 1),
    ("synthetic-probe", "", "gpt-4o-mini", "gpt-4o-mini", 1),
)


def _require_browser() -> None:
    missing = [what for what, ok in (("chromium", Path(CHROMIUM).exists()), ("node", shutil.which("node")),
                                     ("playwright-core", (ROOT / "node_modules" / "playwright-core").is_dir()),
                                     ("chart.js", (ROOT / "shared/api/static/vendor/chart.umd.min.js").is_file()))
               if not ok]
    if missing:
        message = f"dashboard browser test needs {', '.join(missing)}: run scripts/bootstrap.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def seed(settings: Settings, today: datetime) -> None:
    rows = []
    for d in range(20):
        day = today - timedelta(days=19 - d)
        for k, (sub, product, model, deployment, weight) in enumerate(KEYS):
            for hour in (9, 14, 20):
                wave = 1 + 0.45 * math.sin((d + 2 * k) / 2.6) + 0.15 * ((d * 7 + k) % 3)
                prompt = int(weight * 41_000 * wave * (1.3 if hour == 14 else 1))
                completion = 0 if "embedding" in model else int(prompt * 0.28)
                cached = prompt // 6 if model == "gpt-4o" else 0
                unmetered = 2 if sub == "team-chat" and d % 4 == 0 and hour == 20 else 0
                key = UsageKey(sub, product, model, deployment)
                rows.append(UsageRow(Granularity.HOUR, day.replace(hour=hour), key,
                                     Counters(requests=weight * 12 + d, prompt_tokens=prompt,
                                              completion_tokens=completion, total_tokens=prompt + completion,
                                              cached_tokens=cached, error_requests=(d + k) % 4 == 0,
                                              unmetered_requests=unmetered, unmetered_streamed=unmetered)))
    store = table_store(settings)
    store.upsert(rows)
    store.upsert(merge(rows, Granularity.DAY))
    store.upsert(merge(rows, Granularity.MONTH))

    month_start = today.replace(day=1)
    month = [r for r in rows if r.period_start >= month_start]
    used = {sub: sum(r.counters.total_tokens for r in month if r.key.subscription_id == sub) for sub, *_ in KEYS}
    quotas = quota_store(settings)
    quotas.put(make_quota("team-search", "month", tokens=max(int(used["team-search"] / 0.72), 1)))
    quotas.put(make_quota("team-chat", "month", tokens=max(int(used["team-chat"] / 1.08), 1)))
    quotas.put(make_quota("*", "month", tokens=max(int(used["team-analytics"] / 0.41), 1)))

    now = datetime.now(UTC)
    attempts = []
    for i in range(96):
        at = now - timedelta(minutes=30 * (96 - i))
        for j, deployment in enumerate(("gpt-4o", "gpt-4o-mini")):
            failed = deployment == "gpt-4o-mini" and i % 23 == 5
            attempts.append(ProbeAttempt(at=at, deployment=deployment, mode="chat", success=not failed,
                                         status=503 if failed else 200,
                                         latency_ms=float(380 + 160 * j + 90 * math.sin(i / 5) + (i * 37) % 60),
                                         run_id=f"run-{i}", error="InternalServerError" if failed else None))
    probe_store(settings).add(attempts)


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[str, Settings, datetime]]:
    import uvicorn

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    seed(settings, today)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(AppContext(lambda: settings)), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", settings, today
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def money(value: str) -> str:
    return "$" + format(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), ",.2f")


def test_dashboard_in_headless_chromium(served: tuple[str, Settings, datetime]) -> None:
    _require_browser()
    base, _, today = served
    def day(offset: int) -> str:
        return (today - timedelta(days=offset)).date().isoformat()

    first_range, second_range = (day(13), day(0)), (day(4), day(0))
    SCREENSHOT.parent.mkdir(exist_ok=True)
    options = {"base": base, "key": TEST_API_KEY, "from": first_range[0], "to": first_range[1],
               "from2": second_range[0], "to2": second_range[1], "screenshot": str(SCREENSHOT),
               "screenshot2": str(SCREENSHOT.with_name("dashboard-range2.png"))}
    started = time.monotonic()
    result = subprocess.run(["node", str(ROOT / "tests" / "browser" / "dashboard.mjs"), json.dumps(options)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "CHROMIUM": CHROMIUM})
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert time.monotonic() - started < 30

    assert seen["external"] == [], "the page tried to reach the internet"
    assert seen["problems"] == [], seen["problems"]
    assert seen["beforeLogin"] == "login"  # API-key mode: the page asks for the key first
    first, second = seen["first"], seen["second"]
    assert first["state"] == second["state"] == "ready" and first["message"] is None
    assert first["storedKey"] and (first["from"], first["to"]) == first_range

    def api(path: str, params: Any) -> Any:
        response = httpx.get(base + path, params=params, headers={"x-api-key": TEST_API_KEY}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    for shown, (start, end) in ((first, first_range), (second, second_range)):
        usage = api("/api/usage", {"from": start, "to": end, "groupBy": "subscription", "pageSize": 5000})
        totals = usage["totals"]
        kpis = shown["kpis"]
        assert int(kpis["tokens"]["value"]) == totals["totalTokens"]
        assert kpis["tokens"]["text"] == f"{totals['totalTokens']:,}"  # thousands separators
        assert kpis["cost"]["value"] == totals["cost"] and kpis["cost"]["text"] == money(totals["cost"])
        assert kpis["requests"]["text"] == f"{totals['requests']:,}"
        assert int(kpis["unmetered"]["value"]) == totals["unmeteredRequests"] > 0
        assert shown["unmeteredBanner"] and f"{totals['unmeteredRequests']:,} successful requests" in \
            shown["unmeteredBanner"]
        by_sub: dict[str, int] = {}
        for row in usage["rows"]:
            by_sub[row["subscriptionId"]] = by_sub.get(row["subscriptionId"], 0) + row["totalTokens"]
        ranked = sorted(by_sub.items(), key=lambda kv: (-kv[1], kv[0]))
        assert [(r["key"], r["tokens"]) for r in shown["subscriptions"]] == ranked[:10]
        assert shown["subscriptions"][0]["cells"][1] == f"{ranked[0][1]:,}"
        # the stacked series add up to the total
        assert round(sum(d["total"] for d in shown["charts"]["tokens"])) == totals["totalTokens"]
        days = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).days + 1
        assert all(d["points"] == days for d in shown["charts"]["tokens"])
        assert abs(sum(d["total"] for d in shown["charts"]["cost"]) - float(totals["cost"])) < 0.01
        models = api("/api/usage", {"from": start, "to": end, "groupBy": "model", "pageSize": 5000})["rows"]
        model_tokens: dict[str, int] = {}
        for row in models:
            model_tokens[row["model"]] = model_tokens.get(row["model"], 0) + row["totalTokens"]
        assert {r["key"]: r["tokens"] for r in shown["models"]} == model_tokens

    assert second["kpis"]["tokens"]["value"] != first["kpis"]["tokens"]["value"]
    assert second["loads"] == 2 and f"from={second_range[0]}" in second["url"]

    # quota gauges: the summary's percentages, coloured by threshold
    month = first_range[1][:7]
    gauges = {g["subscription"]: g for g in first["gauges"]}
    assert {"team-search", "team-chat", "team-analytics"} <= set(gauges)
    for sub, gauge in gauges.items():
        summary = api(f"/api/usage/{sub}/summary", {"month": month})
        assert gauge["percent"] == summary["quota"]["month"]["usedPercent"]
    if gauges["team-chat"]["percent"] >= 100:
        assert gauges["team-chat"]["level"] == "level-over"

    # probe panel: availability as the API reports it
    assert first["probeVisible"]
    probes = api("/api/probes", {"from": first_range[0], "to": first_range[1]})["deployments"]
    shown_probes = {r["key"]: r["cells"] for r in first["probes"]}
    assert set(shown_probes) == {p["deployment"] for p in probes}
    for deployment in probes:
        assert shown_probes[deployment["deployment"]][1] == f"{round(deployment['availabilityPct'], 1):g} %"
        assert shown_probes[deployment["deployment"]][2] == f"{deployment['latencyP50Ms']:,.0f} ms"
    assert SCREENSHOT.stat().st_size > 50_000
