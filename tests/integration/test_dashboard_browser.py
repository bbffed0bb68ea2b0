"""The dashboard in a real headless Chromium (Debian's, driven by playwright-core from
tests/browser/dashboard.mjs): the app served by uvicorn on 127.0.0.1 against Azurite with seeded
rows, quotas and probe attempts; the numbers shown are checked against the API; the date range is
changed; the bare page opens on the default range.  Routes and fields other parts of the API may
not serve yet (``/api/anomalies``, the price list's as-of date and cost split) are stood in for by
the browser driver, present in one run and absent in the other.  API-key mode and Entra sign-in
(App Service Authentication's principal headers, the sign-in redirect).  Screenshots go to
test-artifacts/."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from shared.api.app import AppContext, create_app
from shared.api.sign_in import EntraSignIn
from shared.composition import access_store, probe_store, quota_store, table_store
from shared.core.access import make_grant
from shared.core.probe import ProbeAttempt
from shared.core.quotas import make_quota
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge
from shared.settings import Settings
from shared.tooling.azurite_process import free_port
from tests.conftest import TEST_API_KEY
from tests.usage_support import principal_headers

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT = ARTIFACTS / "dashboard.png"
DAY_QUOTA_SHARE = 1.418  # team-search today: 141.8 % of its day quota, 72 % of its month quota
READER_OID = "dddddddd-1111-2222-3333-444444444444"
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
                # token kinds inside the counts: reasoning (o4-mini), audio in/out (gpt-4o), cache writes (gpt-4.1)
                reasoning = completion // 2 if model == "o4-mini" else 0
                audio_in, audio_out = (prompt // 10, completion // 10) if model == "gpt-4o" else (0, 0)
                cache_write = prompt // 20 if model == "gpt-4.1" else 0
                rows.append(UsageRow(Granularity.HOUR, day.replace(hour=hour), key,
                                     Counters(requests=weight * 12 + d, prompt_tokens=prompt,
                                              completion_tokens=completion, total_tokens=prompt + completion,
                                              cached_tokens=cached, error_requests=(d + k) % 4 == 0,
                                              unmetered_requests=unmetered, unmetered_streamed=unmetered,
                                              reasoning_tokens=reasoning, audio_prompt_tokens=audio_in,
                                              audio_completion_tokens=audio_out, cache_write_tokens=cache_write)))
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
    today_search = sum(r.counters.total_tokens for r in rows
                       if r.key.subscription_id == "team-search" and r.period_start >= today)
    quotas.put(make_quota("team-search", "day", tokens=max(round(today_search / DAY_QUOTA_SHARE), 1)))

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


@contextmanager
def serving(app: Any) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[str, Settings, datetime]]:
    today = _today()
    seed(settings, today)
    with serving(create_app(AppContext(lambda: settings))) as base:
        yield base, settings, today


@pytest.fixture
def served_entra(settings: Settings) -> Iterator[tuple[str, Settings, datetime]]:
    """API_AUTH=entra behind the sign-in gate, as the Functions entry point serves it; one reader."""
    signed = settings.with_overrides(API_AUTH="entra", TRUST_APP_SERVICE_AUTH="true")
    today = _today()
    seed(signed, today)
    access_store(signed).put(make_grant(READER_OID, "reader", ["team-chat", "team-labs"]))
    with serving(EntraSignIn(create_app(AppContext(lambda: signed)), lambda: signed)) as base:
        yield base, signed, today


def money(value: str | Decimal) -> str:
    return "$" + format(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), ",.2f")


# /api/usage's cost split fields as the footer names them (shared/api/static/dashboard.js SPLITS)
SPLITS = (("meter", "By meter", {"costInput": "input", "costCachedInput": "cached input", "costOutput": "output",
                                 "costAudio": "audio", "costCacheWrite": "cache writes", "costPtu": "PTU hours"}),
          ("deployment", "By deployment type", {"costGlobal": "Global", "costDataZone": "Data Zone",
                                                "costRegional": "Regional", "costUncatalogued": "uncatalogued"}),
          ("basis", "By cost basis", {"costPayg": "pay-as-you-go", "costBatch": "batch",
                                      "costPtuAllocated": "PTU allocated", "costOverride": "negotiated rate"}))


def money_shown(value: str) -> str:
    """2 decimals; below a cent, 2 significant digits."""
    amount = Decimal(value)
    if amount == 0 or abs(amount) >= Decimal("0.01"):
        return money(amount)
    return "$" + format(amount.quantize(Decimal(1).scaleb(amount.adjusted() - 1), rounding=ROUND_HALF_UP), "f")


def expected_split(totals: dict[str, Any]) -> dict[str, str] | None:
    groups = {}
    for kind, title, fields in SPLITS:
        parts = sorted(((label, Decimal(totals[field])) for field, label in fields.items()
                        if Decimal(totals.get(field) or 0) != 0), key=lambda part: -part[1])
        if parts:
            groups[kind] = f"{title}: " + " · ".join(f"{label} {money_shown(str(v))}" for label, v in parts)
    return groups or None


MONEY = re.compile(r"^\$[\d,]+\.\d{2}$")  # one format for money everywhere (2 decimals; more only below a cent)


def drive(options: dict[str, Any]) -> dict[str, Any]:
    ARTIFACTS.mkdir(exist_ok=True)
    started = time.monotonic()
    result = subprocess.run(["node", str(ROOT / "tests" / "browser" / "dashboard.mjs"), json.dumps(options)],
                            cwd=ROOT, capture_output=True, text=True, timeout=90,
                            env={**os.environ, "CHROMIUM": CHROMIUM})
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.monotonic() - started < 45
    seen: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["external"] == [], "the page tried to reach the internet"
    return seen


def api_reader(base: str, headers: dict[str, str]) -> Callable[[str, Any], Any]:
    def api(path: str, params: Any) -> Any:
        response = httpx.get(base + path, params=params, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    return api


def ranked_by_cost(rows: list[dict[str, Any]], field: str) -> list[tuple[str, Decimal, int]]:
    cost: dict[str, Decimal] = {}
    tokens: dict[str, int] = {}
    for row in rows:
        cost[row[field]] = cost.get(row[field], Decimal(0)) + Decimal(row["cost"])
        tokens[row[field]] = tokens.get(row[field], 0) + row["totalTokens"]
    return sorted(((name, cost[name], tokens[name]) for name in cost), key=lambda t: (-t[1], -t[2], t[0]))


def check_usage_panels(shown: dict[str, Any], api: Callable[[str, Any], Any], start: str, end: str,
                       every_kind: bool = False) -> None:
    usage = api("/api/usage", {"from": start, "to": end, "groupBy": "subscription", "pageSize": 5000})
    totals = usage["totals"]
    kpis = shown["kpis"]
    assert int(kpis["tokens"]["value"]) == totals["totalTokens"]
    assert kpis["tokens"]["text"] == f"{totals['totalTokens']:,}"  # thousands separators
    assert kpis["cost"]["value"] == totals["cost"] and kpis["cost"]["text"] == money(totals["cost"])
    assert kpis["requests"]["text"] == f"{totals['requests']:,}"
    # tables ranked by cost, tokens beside it; money the same way in every cell
    ranked = ranked_by_cost(usage["rows"], "subscriptionId")
    assert [(r["key"], r["tokens"]) for r in shown["subscriptions"]] == [(n, t) for n, _, t in ranked[:10]]
    for row, (_, cost, tokens) in zip(shown["subscriptions"], ranked, strict=False):
        assert row["cells"][1] == money(cost) and row["cells"][2] == f"{tokens:,}"
        share = 100 * cost / Decimal(totals["cost"])  # share of the cost, one decimal
        assert abs(float(row["cells"][4].rstrip(" %")) - float(share)) < 0.051, row["cells"]
    models = ranked_by_cost(api("/api/usage", {"from": start, "to": end, "groupBy": "model",
                                               "pageSize": 5000})["rows"], "model")
    assert [(r["key"], r["cells"][1], r["cells"][2]) for r in shown["models"]] == \
        [(n, money(c), f"{t:,}") for n, c, t in models[:10]]
    # token kinds per model, summed from the API's rows: cached input, reasoning, audio (in + out), cache writes
    assert shown["modelHeadings"][4:] == ["Cached input", "Reasoning", "Audio", "Cache writes"]
    kinds: dict[str, list[int]] = {}
    for row in api("/api/usage", {"from": start, "to": end, "groupBy": "model", "pageSize": 5000})["rows"]:
        sums = kinds.setdefault(row["model"], [0, 0, 0, 0])  # one row per model and day: summed
        for i, count in enumerate((row["cachedTokens"], row["reasoningTokens"],
                                   row["audioPromptTokens"] + row["audioCompletionTokens"], row["cacheWriteTokens"])):
            sums[i] += count
    assert [r["cells"][4:] for r in shown["models"]] == [[f"{n:,}" for n in kinds[r["key"]]] for r in shown["models"]]
    if every_kind:  # every kind column shows tokens (the whole seed is visible)
        assert all(any(kinds[name][i] for name in kinds) for i in range(4)), kinds
    money_cells = [kpis["cost"]["text"], *(r["cells"][1] for r in shown["subscriptions"] + shown["models"])]
    assert all(MONEY.match(text) for text in money_cells), money_cells
    assert shown["costTicks"] and all(MONEY.match(text) for text in shown["costTicks"]), shown["costTicks"]
    # the stacked series add up to the totals
    def bars(name: str) -> list[dict[str, Any]]:
        return [d for d in shown["charts"][name] if d["label"] != "Spend anomaly"]

    assert round(sum(d["total"] for d in bars("tokens"))) == totals["totalTokens"]
    days = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).days + 1
    assert all(d["points"] == days for d in bars("tokens"))
    assert abs(sum(d["total"] for d in bars("cost")) - float(totals["cost"])) < 0.01


def check_gauges(shown: dict[str, Any], api: Callable[[str, Any], Any], month: str) -> dict[str, dict[str, Any]]:
    """Each gauge leads with the quota nearest (or over) its limit, the other period beside it."""
    gauges = {g["subscription"]: g for g in shown["gauges"]}
    for sub, gauge in gauges.items():
        quota = api(f"/api/usage/{sub}/summary", {"month": month})["quota"]
        present = sorted((q for q in (quota["day"], quota["month"]) if q), key=lambda q: -q["usedPercent"])
        lead = present[0]
        assert (gauge["period"], gauge["percent"]) == (lead["period"], lead["usedPercent"]), sub
        assert gauge["pctText"] == f"{round(lead['usedPercent'], 1):g} %"
        if len(present) == 2:
            other = present[1]
            assert (gauge["otherPeriod"], gauge["otherPercent"]) == (other["period"], other["usedPercent"])
            assert f"{round(other['usedPercent'], 1):g} %" in gauge["otherText"]
        if lead["usedPercent"] >= 100:
            assert gauge["level"] == "level-over"
    return gauges


def check_probe_axis(shown: dict[str, Any]) -> None:
    """Ticks on round UTC times; each label reads its own time, with the date where the day changes."""
    ticks = shown["probeTicks"]
    labels = [t["label"] for t in ticks]
    values = [t["value"] for t in ticks]
    assert 3 <= len(ticks) <= 10, labels
    assert values == sorted(values) and all(b - a >= 60_000 for a, b in pairwise(values))
    step = values[1] - values[0]
    assert all(v % step == 0 for v in values), "ticks fall on round UTC times"
    previous: datetime | None = None
    for value, label in zip(values, labels, strict=True):
        at = datetime.fromtimestamp(value / 1000, UTC)
        new_day = previous is None or previous.date() != at.date()
        expected = f"{at:%b} {at.day} {at:%H:%M}" if new_day else f"{at:%H:%M}"
        assert label == expected, (labels, expected)
        previous = at
    assert len({label for label in labels if " " in label}) >= 1  # the date is written at least once


def test_dashboard_in_headless_chromium(served: tuple[str, Settings, datetime]) -> None:
    _require_browser()
    base, _, today = served

    def day(offset: int) -> str:
        return (today - timedelta(days=offset)).date().isoformat()

    first_range, second_range = (day(13), day(0)), (day(4), day(0))
    anomalies = {"anomalies": [
        {"subscriptionId": "team-chat", "periodStart": f"{day(3)}T00:00:00Z", "cost": "512.30",
         "baselineCost": "40.10", "kind": "anomaly"},
        {"subscriptionId": "team-labs", "periodStart": f"{day(8)}T00:00:00Z", "cost": "96.00",
         "baselineCost": "7.25", "kind": "anomaly"},
        {"subscriptionId": "team-chat", "periodStart": f"{day(60)}T00:00:00Z", "cost": "1.00",
         "baselineCost": "0.10", "kind": "anomaly"},  # outside the range: not marked
    ]}
    below_a_cent = {"costCacheWrite": "0.0042"}  # a split part under a cent keeps 2 significant digits
    seen = drive({"mode": "apikey", "base": base, "key": TEST_API_KEY, "from": first_range[0], "to": first_range[1],
                  "from2": second_range[0], "to2": second_range[1], "screenshot": str(SCREENSHOT),
                  "screenshot2": str(ARTIFACTS / "dashboard-range2.png"),
                  "gaugesShot": str(ARTIFACTS / "dashboard-gauges.png"),
                  "costShot": str(ARTIFACTS / "dashboard-cost-anomalies.png"),
                  "probeShot": str(ARTIFACTS / "dashboard-probe.png"),
                  "anomalies": anomalies, "usageTotals": below_a_cent})
    assert seen["problems"] == [], seen["problems"]
    assert seen["beforeLogin"] == "login"  # API-key mode: the page asks for the key first
    first, second, bare = seen["first"], seen["second"], seen["bare"]
    assert first["state"] == second["state"] == bare["state"] == "ready" and first["message"] is None
    assert first["storedKey"] and (first["from"], first["to"]) == first_range
    api = api_reader(base, {"x-api-key": TEST_API_KEY})

    for shown, (start, end) in ((first, first_range), (second, second_range)):
        check_usage_panels(shown, api, start, end, every_kind=True)
        usage = api("/api/usage", {"from": start, "to": end, "groupBy": "subscription", "pageSize": 5000})
        assert int(shown["kpis"]["unmetered"]["value"]) == usage["totals"]["unmeteredRequests"] > 0
        assert f"{usage['totals']['unmeteredRequests']:,} successful requests" in shown["unmeteredBanner"]
    assert second["kpis"]["tokens"]["value"] != first["kpis"]["tokens"]["value"]
    assert second["loads"] == 2 and f"from={second_range[0]}" in second["url"]

    # the bare page: month to date, or the last 30 days while the month is under 7 days old
    expected_from = today.replace(day=1) if today.day >= 7 else today - timedelta(days=29)
    assert (bare["from"], bare["to"]) == (expected_from.date().isoformat(), day(0))

    # price list and cost split in the footer, as /api/usage gives them, money formatted one way
    totals = api("/api/usage", {"from": first_range[0], "to": first_range[1], "groupBy": "subscription",
                                "pageSize": 5000})["totals"]
    assert totals["priceAsOf"] and first["priceAsOf"] == totals["priceAsOf"]
    assert first["footerPrices"] == f"Prices as of {totals['priceAsOf']}"
    assert first["costSplit"] == expected_split({**totals, **below_a_cent})
    assert "cache writes $0.0042" in first["costSplit"]["meter"]

    # spend anomalies: a triangle over the day's stacked cost, listed under the chart; none outside the range
    marks = next(d for d in first["charts"]["cost"] if d["label"] == "Spend anomaly")
    bars = [d for d in first["charts"]["cost"] if d["label"] != "Spend anomaly"]
    days = [(datetime.fromisoformat(first_range[0]) + timedelta(days=i)).date().isoformat() for i in range(14)]
    marked = {days[i]: v for i, v in enumerate(marks["data"]) if v is not None}
    assert set(marked) == {day(3), day(8)}
    for when, height in marked.items():
        assert abs(height - sum(d["data"][days.index(when)] for d in bars)) < 1e-6  # on top of that day's stack
    assert [(a["subscription"], a["day"]) for a in first["anomalies"]] == [("team-labs", day(8)),
                                                                          ("team-chat", day(3))]  # by day
    assert "team-chat spent $512.30 against a usual $40.10" in first["anomalies"][1]["text"]
    assert "▲ spend anomaly" in first["costHint"]
    # the second range (the last 5 days) holds day 3 but not day 8
    assert [(a["subscription"], a["day"]) for a in second["anomalies"]] == [("team-chat", day(3))]

    gauges = check_gauges(first, api, first_range[1][:7])
    assert {"team-search", "team-chat", "team-analytics"} <= set(gauges)
    search = gauges["team-search"]  # over its day quota, under its month quota: the day leads
    assert search["period"] == "day" and search["percent"] >= 141.8 and search["level"] == "level-over"
    assert search["otherPeriod"] == "month" and search["otherPercent"] < 100

    # probe panel: availability as the API reports it, and a time axis that reads
    assert first["probeVisible"]
    probes = api("/api/probes", {"from": first_range[0], "to": first_range[1]})["deployments"]
    shown_probes = {r["key"]: r["cells"] for r in first["probes"]}
    assert set(shown_probes) == {p["deployment"] for p in probes}
    for deployment in probes:
        assert shown_probes[deployment["deployment"]][1] == f"{round(deployment['availabilityPct'], 1):g} %"
        assert shown_probes[deployment["deployment"]][2] == f"{deployment['latencyP50Ms']:,.0f} ms"
    check_probe_axis(first)
    assert SCREENSHOT.stat().st_size > 50_000


def test_dashboard_signs_in_with_entra(served_entra: tuple[str, Settings, datetime]) -> None:
    """No key prompt, no ?code=: unsigned, the page goes to /.auth/login/aad and back; signed in, the
    reader sees its own subscriptions; without /api/anomalies or the cost split, nothing is marked."""
    _require_browser()
    base, _, today = served_entra
    start, end = (today - timedelta(days=13)).date().isoformat(), today.date().isoformat()
    principal = principal_headers(READER_OID, "reader@contoso.com")
    without_split = dict.fromkeys(["priceAsOf", *(f for _, _, fields in SPLITS for f in fields)])
    seen = drive({"mode": "entra", "base": base, "from": start, "to": end, "principal": principal,
                  "screenshot": str(ARTIFACTS / "dashboard-entra.png"), "anomalies": 404,
                  "usageTotals": without_split})
    # before sign-in: the API's 401 (the page itself is open), then the sign-in redirect back to this view
    assert seen["signIns"] == [
        "/.auth/login/aad?post_login_redirect_uri=" + quote(f"/api/dashboard?from={start}&to={end}", safe="")]
    expected_problems = {"HTTP 401 /api/access/me", "HTTP 404 /api/anomalies"}
    assert set(seen["problems"]) <= expected_problems | {"console: Failed to load resource: the server responded "
                                                         "with a status of 401 (Unauthorized)",
                                                         "console: Failed to load resource: the server responded "
                                                         "with a status of 404 (Not Found)"}, seen["problems"]
    assert not any("code=" in url for url in seen["requested"]), "the function key must never be in a URL"
    shown = seen["first"]
    assert shown["state"] == "ready" and shown["message"] is None and not shown["loginOpen"]
    assert shown["who"] == READER_OID and shown["signoutText"] == "Sign out"
    api = api_reader(base, principal)
    check_usage_panels(shown, api, start, end)
    assert {r["key"] for r in shown["subscriptions"]} == {"team-chat", "team-labs"}
    # absent optional data: no marks, no list, the footer's plain note, no split
    assert not any(d["label"] == "Spend anomaly" for d in shown["charts"]["cost"])
    assert shown["anomalies"] == [] and not shown["anomalyListVisible"] and "anomaly" not in shown["costHint"]
    assert shown["priceAsOf"] is None and shown["costSplit"] is None
    assert shown["footerPrices"].startswith("Cost is computed at read time")
