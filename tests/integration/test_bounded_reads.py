"""Bounded reads of /api/usage against Azurite: pages resume from the Table continuation in the signed
token (never re-reading the range before them), totals carried from the first page, CSV streamed,
filter values capped, many subscriptions read in one range query, out-of-range datetimes a 400."""

from __future__ import annotations

import asyncio
import csv
import io
import urllib.parse
from collections import Counter as Tally
from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.adapters.tables import TableStore
from shared.api.app import AppContext, create_app
from shared.composition import table_store
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.settings import Settings
from tests.conftest import TEST_API_KEY

NOW = datetime(2026, 12, 20, tzinfo=UTC)
START = datetime(2026, 10, 1, tzinfo=UTC)
SUBSCRIPTIONS = ("sub-a", "sub-b", "sub-c")
HOURS = 500  # per subscription: 1,500 hour rows, two storage pages of a cross-partition read
STEP = timedelta(hours=2)  # 1,000 hours: the rows span two merge windows (31 days) when summed


def seed_rows() -> list[UsageRow]:
    rows = []
    for s, sub in enumerate(SUBSCRIPTIONS):
        for h in range(HOURS):
            requests = 1 + (s * 7 + h) % 5
            rows.append(UsageRow(Granularity.HOUR, START + h * STEP, UsageKey(sub, "p", "gpt-4o", "gpt-4o"),
                                 Counters(requests=requests, prompt_tokens=100 * requests + h,
                                          completion_tokens=10 * s + 1, total_tokens=100 * requests + h + 10 * s + 1)))
    return rows


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory, azurite: Any) -> Settings:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path_factory.mktemp("wide") / "ws.duckdb", azurite.connection_string)
    table_store(settings).upsert(seed_rows())
    return settings


class Recorder:
    """A TableServiceClient recording the query string of every usage-table query it sends."""

    def __init__(self, connection_string: str) -> None:
        from azure.data.tables import TableServiceClient

        self.queries: list[dict[str, str]] = []
        self._inner = TableServiceClient.from_connection_string(connection_string, raw_request_hook=self._record)

    def _record(self, request: Any) -> None:
        url = urllib.parse.urlsplit(request.http_request.url)
        if request.http_request.method == "GET" and url.path.endswith("usage()"):
            self.queries.append({k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Client:
    def __init__(self, settings: Settings, key: str = TEST_API_KEY) -> None:
        assert settings.tables_connection_string
        self.recorder = Recorder(settings.tables_connection_string)
        self.app = create_app(AppContext(lambda: settings, lambda s: TableStore(self.recorder, s.table_prefix, "rec"),
                                         clock=lambda: NOW))
        self.key = key

    def get(self, params: Any, path: str = "/api/usage") -> httpx.Response:
        async def run() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://t",
                                         headers={"x-api-key": self.key}) as client:
                return await client.get(path, params=params)

        return asyncio.run(run())

    def chunks(self, params: list[tuple[str, str]]) -> tuple[int, dict[str, str], list[bytes]]:
        """Status, headers and each body message the app sent (raw ASGI: httpx joins them)."""
        messages: list[MutableMapping[str, Any]] = []
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": "/api/usage", "raw_path": b"/api/usage", "root_path": "",
                 "query_string": urllib.parse.urlencode(params).encode(), "server": ("t", 80), "client": ("c", 1),
                 "headers": [(b"host", b"t"), (b"x-api-key", self.key.encode())]}

        async def call() -> None:
            done = asyncio.Event()
            asked = False

            async def receive() -> dict[str, Any]:
                nonlocal asked
                if not asked:
                    asked = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                await done.wait()  # the client stays until the response is complete
                return {"type": "http.disconnect"}

            async def send(message: MutableMapping[str, Any]) -> None:
                messages.append(message)
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    done.set()

            await self.app(scope, receive, send)

        asyncio.run(call())
        start = messages[0]
        headers = {k.decode(): v.decode() for k, v in start["headers"]}
        return start["status"], headers, [m["body"] for m in messages[1:] if m.get("body")]

    def pages(self, params: list[tuple[str, str]]) -> list[tuple[dict[str, Any], list[dict[str, str]]]]:
        """Every page's body with the storage queries it sent."""
        out = []
        token = None
        for _ in range(100):
            before = len(self.recorder.queries)
            response = self.get(params + ([("next", token)] if token else []))
            assert response.status_code == 200, response.text
            body = response.json()
            out.append((body, self.recorder.queries[before:]))
            token = body["next"]
            if token is None:
                return out
        raise AssertionError("paging did not end")


RANGE = [("from", START.date().isoformat()), ("to", (START + HOURS * STEP).date().isoformat()),
         ("granularity", "hour")]


def expected(group_by_subscription: bool = True, keep: tuple[str, ...] = SUBSCRIPTIONS) -> dict[tuple[str, ...], int]:
    """(periodStart[, subscription]) -> totalTokens, summed from the seeds (no report code)."""
    out: Tally[tuple[str, ...]] = Tally()
    for row in seed_rows():
        if row.key.subscription_id in keep:
            period = row.period_start.isoformat().replace("+00:00", "Z")
            slot = (period, row.key.subscription_id) if group_by_subscription else (period,)
            out[slot] += row.counters.total_tokens
    return dict(out)


def test_pages_resume_from_the_table_continuation_without_rereading(wide: Settings) -> None:
    client = Client(wide)
    pages = client.pages([*RANGE, ("pageSize", "200")])
    rows = [row for body, _ in pages for row in body["rows"]]
    assert {(r["periodStart"], r["subscriptionId"]): r["totalTokens"] for r in rows} == expected()
    assert len(rows) == len(expected()) == 1500  # none repeated, none skipped
    # storage order: subscription by subscription, period by period
    assert [r["subscriptionId"] for r in rows] == sorted(r["subscriptionId"] for r in rows)
    first_body, first_queries = pages[0]
    assert first_body["rowCount"] == 1500 and len(first_queries) == 2  # the whole range, once, for the totals
    assert first_body["totals"]["totalTokens"] == sum(expected().values())
    for body, queries in pages[1:]:
        assert body["totals"] == first_body["totals"] and body["rowCount"] == 1500  # carried by the token
        assert 1 <= len(queries) <= 2, queries  # its own storage page (and the next one at a boundary)
    # the pages after the first thousand rows start at the service's continuation, not at the range start
    late = [queries[0] for body, queries in pages[6:]]
    assert late and all("NextPartitionKey" in query for query in late)
    assert sum(len(queries) for _, queries in pages) <= 2 + 2 * (len(pages) - 1)


def test_named_subscriptions_page_across_partitions(wide: Settings) -> None:
    client = Client(wide)
    params = [*RANGE, ("subscription", "sub-c,sub-a"), ("pageSize", "300")]
    pages = client.pages(params)
    rows = [row for body, _ in pages for row in body["rows"]]
    assert {(r["periodStart"], r["subscriptionId"]): r["totalTokens"] for r in rows} == expected(
        keep=("sub-a", "sub-c"))
    assert [r["subscriptionId"] for r in rows] == ["sub-a"] * HOURS + ["sub-c"] * HOURS
    for _, queries in pages[1:]:
        for query in queries:  # one partition at a time, from where the last page stopped
            assert query["$filter"].startswith("PartitionKey eq 'sub-"), query
    assert "sub-c" in pages[-1][1][0]["$filter"]  # the last page reads only the last partition


def test_rows_summed_across_subscriptions_page_window_by_window(wide: Settings) -> None:
    client = Client(wide)
    whole = client.get([*RANGE, ("groupBy", "model"), ("pageSize", "5000")]).json()
    pages = client.pages([*RANGE, ("groupBy", "model"), ("pageSize", "70")])
    rows = [row for body, _ in pages for row in body["rows"]]
    assert rows == whole["rows"] and len(rows) == HOURS
    assert {(r["periodStart"],): r["totalTokens"] for r in rows} == expected(group_by_subscription=False)
    assert [r["periodStart"] for r in rows] == sorted(r["periodStart"] for r in rows)  # period by period
    # each page reads the window it resumes in (two storage pages here), and the next when it runs on
    assert max(len(queries) for _, queries in pages[1:]) <= 3
    second_window = (START + timedelta(days=31)).strftime("h|%Y-%m-%dT%H")
    later = [queries for body, queries in pages[1:] if body["rows"][0]["periodStart"] >= "2026-11-01"]
    assert later and all(f"RowKey ge '{second_window}'" in q["$filter"] for queries in later for q in queries)


def test_rows_written_between_pages_neither_repeat_nor_shift_rows(wide: Settings, azurite: Any) -> None:
    from tests.conftest import make_settings

    settings = make_settings(wide.local_workspace_path, azurite.connection_string)
    store = table_store(settings)
    store.upsert(seed_rows()[:400])
    client = Client(settings)
    first = client.get([*RANGE, ("pageSize", "150")]).json()
    # a row inside the page already sent, and one after it
    store.upsert([UsageRow(Granularity.HOUR, START + timedelta(minutes=60), UsageKey("sub-a", "p", "gpt-4o", "x"),
                           Counters(requests=1, total_tokens=5)),
                  UsageRow(Granularity.HOUR, START + 300 * STEP, UsageKey("sub-a", "p", "gpt-4o", "x"),
                           Counters(requests=1, total_tokens=7))])
    second = client.get([*RANGE, ("pageSize", "150"), ("next", first["next"])]).json()
    sent = [(r["periodStart"], r["subscriptionId"]) for r in first["rows"] + second["rows"]]
    assert len(sent) == len(set(sent)) == 300
    assert sent == sorted(sent, key=lambda slot: (slot[1], slot[0]))


def test_csv_is_streamed_in_pieces_and_holds_every_row(wide: Settings) -> None:
    client = Client(wide)
    status, headers, chunks = client.chunks([*RANGE, ("format", "csv")])
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert len(chunks) >= 3  # written as read, not built whole
    records = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert {(r["periodStart"], r["subscriptionId"]): int(r["totalTokens"]) for r in records} == expected()


def test_filter_values_are_capped_and_many_subscriptions_cost_one_range_query(wide: Settings) -> None:
    client = Client(wide)
    many = ",".join(f"x-{n}" for n in range(201))
    for parameter in ("subscription", "model", "product", "deployment"):
        response = client.get([*RANGE, (parameter, many)])
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["parameter"] == parameter and "at most 200 values, got 201" in error["message"]
    repeated = [("subscription", f"x-{n}") for n in range(150)] + [("subscription", "sub-b")] * 3
    before = len(client.recorder.queries)
    body = client.get([*RANGE, *repeated, ("subscription", "sub-a"), ("pageSize", "5000")]).json()
    queries = client.recorder.queries[before:]
    assert {r["subscriptionId"] for r in body["rows"]} == {"sub-a", "sub-b"}
    assert body["totals"]["totalTokens"] == sum(expected(keep=("sub-a", "sub-b")).values())
    assert all(not q["$filter"].startswith("PartitionKey") for q in queries) and len(queries) == 2  # one range read
    before = len(client.recorder.queries)
    assert client.get([*RANGE, ("subscription", ",".join(f"y-{n}" for n in range(20)))]).status_code == 200
    assert len(client.recorder.queries) - before == 20  # up to 20: one partition read each


@pytest.mark.parametrize(("params", "parameter"), [
    ({"to": "9999-12-31"}, "to"), ({"from": "0001-01-01T00:00+14:00"}, "from"), ({"from": "0001-01-01"}, "from"),
    ({"to": "9999-12-31T23:59:59Z"}, "to"),
])
@pytest.mark.parametrize("path", ["/api/usage", "/api/probes", "/api/usage?format=csv"])
def test_out_of_range_datetimes_are_400_naming_the_parameter(wide: Settings, params: dict[str, str], parameter: str,
                                                             path: str) -> None:
    base, _, query = path.partition("?")
    extra = [tuple(query.split("="))] if query else []
    response = Client(wide).get([*params.items(), *extra], path=base)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["parameter"] == parameter and "between 1970-01-01" in response.text
