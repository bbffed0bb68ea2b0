"""Known usage rows for the report API, dashboard and scoping tests, and an independent aggregation
of them (plain dicts and Decimal arithmetic, no report/costing code) to check the API against."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx

from shared.api.app import AppContext, create_app
from shared.composition import table_store
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge
from shared.settings import Settings
from tests.billing_support import ALPHA_MINI, ALPHA_NEW, ALPHA_OLD, EMBED, expected_cost

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
DAYS = (3, 10, 16, 24)
HOURS = (9, 15)
# (subscription, product, model, deployment): model names priced by billing_support.PRICE_FILE
KEYS = (
    ("team-a", "p1", "alpha", "alpha-dep"),
    ("team-a", "p1", "alpha-mini", "mini"),
    ("team-b", "p2", "alpha-mini", "mini"),
    ("team-b", "p2", "embed", "embed-dep"),
    ("team-c", "p1", "alpha", "alpha-dep"),
    ("team-c", "p2", "alpha", "alpha-dep"),
    ("synthetic-probe", "", "alpha-mini", "mini"),
)
FIELDS = ("subscription", "product", "model", "deployment")
COLUMN = {"subscription": "subscriptionId", "product": "productId", "model": "model", "deployment": "deployment"}


@dataclass(frozen=True)
class Seed:
    at: datetime
    key: tuple[str, str, str, str]
    requests: int
    prompt: int
    cached: int
    completion: int
    errors: int
    unmetered: int


def seeds() -> list[Seed]:
    out = []
    for k, key in enumerate(KEYS):
        for day in DAYS:
            for hour in HOURS:
                prompt = 1000 * (k + 1) + 37 * day + hour
                out.append(Seed(datetime(2026, 11, day, hour, tzinfo=UTC), key, requests=3 + k, prompt=prompt,
                                cached=(prompt // 10) if k % 2 else 0, completion=11 * day + 5 * k,
                                errors=1 if (day + k) % 3 == 0 else 0, unmetered=1 if k == 1 and day == 24 else 0))
    return out


def usage_rows(items: Iterable[Seed]) -> list[UsageRow]:
    return [UsageRow(Granularity.HOUR, s.at, UsageKey(*s.key),
                     Counters(requests=s.requests, prompt_tokens=s.prompt, completion_tokens=s.completion,
                              total_tokens=s.prompt + s.completion, cached_tokens=s.cached, error_requests=s.errors,
                              unmetered_requests=s.unmetered, unmetered_streamed=s.unmetered))
            for s in items]


def store_seeds(settings: Settings, items: Iterable[Seed] | None = None) -> None:
    hourly = usage_rows(seeds() if items is None else items)
    store = table_store(settings)
    store.upsert(hourly)
    store.upsert(merge(hourly, Granularity.DAY))
    store.upsert(merge(hourly, Granularity.MONTH))


def price_of(model: str, day: date) -> tuple[str, str, str]:
    if model == "alpha":
        return ALPHA_OLD if day < date(2026, 11, 16) else ALPHA_NEW
    return {"alpha-mini": ALPHA_MINI, "embed": EMBED}[model]


def seed_cost(s: Seed) -> Decimal:
    return expected_cost(s.prompt, s.cached, s.completion, price_of(s.key[2], s.at.date()))


def period_of(moment: datetime, granularity: str) -> str:
    if granularity == "hour":
        start = moment.replace(minute=0)
    elif granularity == "day":
        start = moment.replace(hour=0)
    else:
        start = moment.replace(day=1, hour=0)
    return start.isoformat().replace("+00:00", "Z")


def expected_rows(group_by: tuple[str, ...], granularity: str = "day",
                  keep: Callable[[Seed], bool] = lambda s: True) -> dict[tuple[str, ...], dict[str, Any]]:
    """(periodStart, *grouped values) -> summed counters and cost, straight from the seeds."""
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for s in seeds():
        if not keep(s):
            continue
        values = tuple(s.key[FIELDS.index(f)] for f in group_by)
        slot = (period_of(s.at, granularity), *values)
        row = out.setdefault(slot, {"requests": 0, "promptTokens": 0, "completionTokens": 0, "totalTokens": 0,
                                    "cachedTokens": 0, "errorRequests": 0, "unmeteredRequests": 0,
                                    "cost": Decimal(0)})
        row["requests"] += s.requests
        row["promptTokens"] += s.prompt
        row["completionTokens"] += s.completion
        row["totalTokens"] += s.prompt + s.completion
        row["cachedTokens"] += s.cached
        row["errorRequests"] += s.errors
        row["unmeteredRequests"] += s.unmetered
        row["cost"] += seed_cost(s)
    return out


def api_rows(rows: list[dict[str, Any]], group_by: tuple[str, ...]) -> dict[tuple[str, ...], dict[str, Any]]:
    out = {}
    for row in rows:
        slot = (row["periodStart"], *(row[COLUMN[f]] for f in group_by))
        assert slot not in out, f"duplicate row {slot}"
        out[slot] = {name: row[name] for name in ("requests", "promptTokens", "completionTokens", "totalTokens",
                                                   "cachedTokens", "errorRequests", "unmeteredRequests")}
        out[slot]["cost"] = Decimal(row["cost"])
    return out


# -- principals (App Service Authentication headers) ------------------------------------------------
OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def principal_headers(object_id: str | None = None, upn: str | None = None, *, with_blob: bool = True,
                      id_header: bool = True) -> dict[str, str]:
    claims = []
    if object_id:
        claims.append({"typ": OID_CLAIM, "val": object_id})
    if upn:
        claims.append({"typ": "preferred_username", "val": upn})
    headers = {}
    if with_blob:
        blob = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
        headers["X-MS-CLIENT-PRINCIPAL"] = base64.b64encode(json.dumps(blob).encode()).decode()
    if object_id and id_header:
        headers["X-MS-CLIENT-PRINCIPAL-ID"] = object_id
    if upn:
        headers["X-MS-CLIENT-PRINCIPAL-NAME"] = upn
    return headers


# -- calling the app ----------------------------------------------------------------------------------
class Api:
    """One app (one AppContext) called through the ASGI transport; the clock may be moved."""

    def __init__(self, settings: Settings, now: datetime = NOW, key: str | None = None,
                 store_factory: Any = None) -> None:
        from tests.conftest import TEST_API_KEY

        self.now = now
        self.key = TEST_API_KEY if key is None else key
        self.app = create_app(AppContext(lambda: settings, store_factory, clock=lambda: self.now))

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, key: str | None = None,
                **kwargs: Any) -> httpx.Response:
        chosen = self.key if key is None else key
        sent = {"x-api-key": chosen} if chosen else {}
        sent.update(headers or {})

        async def run() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://test") as c:
                return await c.request(method, path, headers=sent, **kwargs)

        return asyncio.run(run())

    def get(self, path: str, params: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, params=params, **kwargs)

    def all_pages(self, params: list[tuple[str, str]],
                  **kwargs: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every row of a paged usage query, and each page's body."""
        rows: list[dict[str, Any]] = []
        bodies = []
        token = None
        for _ in range(1000):
            response = self.get("/api/usage", params + ([("next", token)] if token else []), **kwargs)
            assert response.status_code == 200, response.text
            body = response.json()
            bodies.append(body)
            rows += body["rows"]
            token = body["next"]
            if token is None:
                return rows, bodies
        raise AssertionError("paging did not end")
