"""Price sync end to end: the real httpx client against a loopback Retail Prices server serving the 27
real rows over 3 pages, merged into an in-memory store and into the Table Storage store (Azurite)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.adapters.meter_price_tables import METER_PRICES, MeterPriceTableStore
from shared.adapters.retail_prices import (
    API_VERSION,
    RetailPricesClient,
    RetailPricesError,
    price_filter,
)
from shared.adapters.table_access import TableAccess
from shared.composition import table_store
from shared.core.meters import PriceBook, parse_feed
from shared.errors import ConcurrentUpdateError
from shared.services.price_sync import sync_prices
from shared.settings import Settings
from tests.fakes import InMemoryMeterPriceStore

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "retail-examples.json"
NOW = datetime(2025, 8, 25, 6, 0, tzinfo=UTC)
LATER = datetime(2025, 9, 20, 6, 0, tzinfo=UTC)
PAGE_SIZE = 10  # 27 rows -> pages of 10, 10 and 7
GPT4O_INPUT = '"retailPrice": 0.0025, "unitPrice": 0.0025, "armRegionName": "eastus2", "location": "US East 2", ' \
              '"effectiveStartDate": "2024-08-01T00:00:00Z", "meterId": "db6a1085'
GPT4O_INPUT_CUT = '"retailPrice": 0.002, "unitPrice": 0.002, "armRegionName": "eastus2", "location": "US East 2", ' \
                  '"effectiveStartDate": "2025-09-15T00:00:00Z", "meterId": "db6a1085'


def raw_lines() -> list[str]:
    """The rows exactly as the feed served them (JSON text, so numbers reach the client verbatim)."""
    document = json.loads(EXAMPLES.read_text(encoding="utf-8"))
    return [entry["raw_line"] for entry in document["rows"]]


@dataclass
class Feed:
    """What the loopback server serves, and what it was asked."""

    items: list[str] = field(default_factory=raw_lines)
    fail_always: set[int] = field(default_factory=set)  # page numbers answering 500 every time
    throttle_once: set[int] = field(default_factory=set)  # page numbers answering 429 (Retry-After: 0) once
    not_json: set[int] = field(default_factory=set)
    foreign_next: bool = False
    requests: list[str] = field(default_factory=list)


class FeedServer:
    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        handler = type("Handler", (_Handler,), {"feed": feed})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/api/retail/prices"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    feed: Feed

    def log_message(self, *_: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        feed = self.feed
        feed.requests.append(self.path)
        query = parse_qs(urlsplit(self.path).query)
        skip = int(query.get("$skip", ["0"])[0])
        page = skip // PAGE_SIZE + 1
        if page in feed.fail_always:
            return self._send(500, "text/plain", "server error")
        if page in feed.throttle_once:
            feed.throttle_once.discard(page)
            return self._send(429, "application/json", '{"error": "too many requests"}', {"Retry-After": "0"})
        if page in feed.not_json:
            return self._send(200, "text/html", "<html>maintenance</html>")
        chunk = feed.items[skip:skip + PAGE_SIZE]
        host = "http://evil.example" if feed.foreign_next else f"http://{self.headers['Host']}"
        base = f"{host}{urlsplit(self.path).path}?api-version={API_VERSION}&currencyCode='USD'"
        next_link = json.dumps(f"{base}&$skip={skip + PAGE_SIZE}") if skip + PAGE_SIZE < len(feed.items) else "null"
        body = ('{"BillingCurrency": "USD", "CustomerEntityId": "Default", "CustomerEntityType": "Retail", '
                f'"Items": [{", ".join(chunk)}], "NextPageLink": {next_link}, "Count": {len(chunk)}}}')
        self._send(200, "application/json", body)

    def _send(self, status: int, content_type: str, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def feed() -> Feed:
    return Feed()


@pytest.fixture
def server(feed: Feed) -> Iterator[FeedServer]:
    with FeedServer(feed) as running:
        yield running


@dataclass
class Sleeps:
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client_for(server: FeedServer, sleeps: Sleeps, **options: Any) -> RetailPricesClient:
    return RetailPricesClient(feed_url=server.url, sleep=sleeps, timeout_seconds=5, **options)


# -- the client --------------------------------------------------------------------------------
def test_the_client_follows_every_page_and_sends_only_the_validated_filter(server: FeedServer) -> None:
    items = client_for(server, Sleeps()).fetch_items("eastus2", "USD")
    assert len(items) == 27 and len(server.feed.requests) == 3
    assert items[0]["retailPrice"] == Decimal("0.0025") and isinstance(items[0]["retailPrice"], Decimal)
    first = parse_qs(urlsplit(server.feed.requests[0]).query)
    assert first["api-version"] == [API_VERSION] and first["currencyCode"] == ["USD"]
    assert first["$filter"] == [price_filter("eastus2")]
    assert first["$filter"][0].startswith("(productName eq 'Azure OpenAI' or productName eq 'Azure OpenAI GPT5' or ")
    assert first["$filter"][0].endswith(" and armRegionName eq 'eastus2'")
    assert "$skip=10" in server.feed.requests[1] and "$skip=20" in server.feed.requests[2]


def test_a_transient_429_is_retried_after_its_retry_after(feed: Feed, server: FeedServer) -> None:
    feed.throttle_once = {2}
    sleeps = Sleeps()
    assert len(client_for(server, sleeps).fetch_items("eastus2", "USD")) == 27
    assert sleeps.waits == [0.0] and len(feed.requests) == 4


def test_a_page_that_keeps_failing_fails_the_fetch_naming_it(feed: Feed, server: FeedServer) -> None:
    feed.fail_always = {3}
    sleeps = Sleeps()
    with pytest.raises(RetailPricesError) as raised:
        client_for(server, sleeps, max_attempts=4, backoff_seconds=0.5, max_wait_seconds=1.5).fetch_items(
            "eastus2", "USD")
    message = str(raised.value)
    assert "page 3" in message and "$skip=20" in message and "HTTP 500" in message and "4 times" in message
    assert sleeps.waits == [0.5, 1.0, 1.5]  # exponential backoff, capped


def test_a_page_that_is_not_json_is_an_error_naming_it(feed: Feed, server: FeedServer) -> None:
    feed.not_json = {2}
    with pytest.raises(RetailPricesError, match=r"page 2 \(.*\$skip=10.*\) is not JSON"):
        client_for(server, Sleeps()).fetch_items("eastus2", "USD")


def test_a_next_page_link_to_another_origin_is_not_followed(feed: Feed, server: FeedServer) -> None:
    feed.foreign_next = True
    with pytest.raises(RetailPricesError, match="outside the feed's origin"):
        client_for(server, Sleeps()).fetch_items("eastus2", "USD")
    assert len(feed.requests) == 1


def test_an_unreachable_feed_is_retried_then_named() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    client = RetailPricesClient(feed_url=f"http://127.0.0.1:{port}/api/retail/prices", sleep=sleeps,
                                max_attempts=3, backoff_seconds=0, timeout_seconds=2)
    with pytest.raises(RetailPricesError, match=r"page 1 .* failed 3 times \(last: no answer \(ConnectError\)\)"):
        client.fetch_items("eastus2", "USD")
    assert len(sleeps.waits) == 2


# -- the sync ----------------------------------------------------------------------------------
def test_a_sync_run_twice_stores_the_book_once(server: FeedServer) -> None:
    store = InMemoryMeterPriceStore()
    client = client_for(server, Sleeps())
    first = sync_prices(client, store, "eastus2", "USD", NOW)
    assert (first.added, first.unchanged, first.failures, first.as_of) == (27, 0, (), NOW)
    book = store.load("USD").book
    second = sync_prices(client, store, "eastus2", "USD", LATER)
    assert (second.added, second.unchanged, second.failures) == (0, 27, ())
    assert store.commits == 1 and store.load("USD").book == book and second.generation == first.generation


def test_a_failing_page_leaves_the_prices_unchanged(feed: Feed, server: FeedServer) -> None:
    store = InMemoryMeterPriceStore()
    client = client_for(server, Sleeps(), max_attempts=2, backoff_seconds=0)
    sync_prices(client, store, "eastus2", "USD", NOW)
    before = store.load("USD")
    # The next feed has a new price on page 1, and page 3 fails: nothing of page 1 may be stored.
    feed.items = [line.replace(GPT4O_INPUT, GPT4O_INPUT_CUT) for line in feed.items]
    feed.fail_always = {3}
    with pytest.raises(RetailPricesError, match="page 3"):
        sync_prices(client, store, "eastus2", "USD", LATER)
    assert store.load("USD") == before and store.commits == 1


def test_unparseable_meters_are_listed_and_the_rest_is_stored(feed: Feed, server: FeedServer) -> None:
    hostile = feed.items[0].replace("gpt-4o-0806-Inp-glbl Tokens", "gpt-4o-0806-Inp-glbl-warp9 Tokens")
    feed.items = [*feed.items, hostile]
    store = InMemoryMeterPriceStore()
    result = sync_prices(client_for(server, Sleeps()), store, "eastus2", "USD", NOW)
    assert result.added == 27
    assert [(f.meter_name, f.reason) for f in result.failures] == [
        ("gpt-4o-0806-Inp-glbl-warp9 Tokens", "unknown part 'warp9'")]


# -- the Table Storage store (Azurite) ---------------------------------------------------------
def table_store_for(settings: Settings) -> MeterPriceTableStore:
    return MeterPriceTableStore(TableAccess(table_store(settings), settings.table_prefix))


def all_entities(settings: Settings) -> list[dict[str, Any]]:
    client = table_store(settings).table_client(f"{settings.table_prefix}{METER_PRICES}")
    return sorted((dict(e) for e in client.list_entities()), key=lambda e: (e["PartitionKey"], e["RowKey"]))


def test_the_table_store_round_trips_and_a_second_sync_changes_nothing(server: FeedServer, settings: Settings) -> None:
    store = table_store_for(settings)
    client = client_for(server, Sleeps())
    first = sync_prices(client, store, "eastus2", "USD", NOW)
    stored = table_store_for(settings).load("USD")
    expected = PriceBook("USD", parse_feed(json.loads(f"[{','.join(raw_lines())}]", parse_float=Decimal)).prices)
    assert stored.book == expected and stored.generation == first.generation and stored.as_of == NOW
    entities = all_entities(settings)
    assert len(entities) == 28  # 27 rows in one generation partition + the pointer
    second = sync_prices(client, store, "eastus2", "USD", LATER)
    assert (second.added, second.unchanged) == (0, 27)
    assert all_entities(settings) == entities  # same table, entity for entity


def test_a_price_change_is_a_new_generation_and_history_stays(feed: Feed, server: FeedServer,
                                                             settings: Settings) -> None:
    store = table_store_for(settings)
    client = client_for(server, Sleeps(), max_attempts=2, backoff_seconds=0)
    first = sync_prices(client, store, "eastus2", "USD", NOW)
    before = store.load("USD")
    feed.items = [line.replace(GPT4O_INPUT, GPT4O_INPUT_CUT) for line in feed.items]

    feed.fail_always = {3}
    with pytest.raises(RetailPricesError, match="page 3"):
        sync_prices(client, store, "eastus2", "USD", LATER)
    assert store.load("USD") == before and len(all_entities(settings)) == 28  # nothing written

    feed.fail_always = set()
    second = sync_prices(client, store, "eastus2", "USD", LATER)
    assert (second.added, second.unchanged) == (1, 26) and second.generation != first.generation
    after = table_store_for(settings).load("USD")
    assert len(after.book.rows) == 28
    key = next(row.key for row in after.book.rows if row.meter_name == "gpt-4o-0806-Inp-glbl Tokens")
    assert after.book.lookup(key, datetime(2025, 9, 14, 23, tzinfo=UTC)).price == Decimal("2.5")  # type: ignore[union-attr]
    assert after.book.lookup(key, datetime(2025, 9, 15, 0, tzinfo=UTC)).price == Decimal("2")  # type: ignore[union-attr]
    partitions = {e["PartitionKey"] for e in all_entities(settings)}
    assert partitions == {"pointer", f"{first.generation}-0000", f"{second.generation}-0000"}  # old generation kept


def test_the_pointer_switch_is_refused_to_a_sync_that_read_an_older_book(settings: Settings) -> None:
    rows = parse_feed(json.loads(f"[{','.join(raw_lines())}]", parse_float=Decimal)).prices
    store = table_store_for(settings)
    empty = store.load("USD")
    winner = store.commit(PriceBook("USD", rows[:10]), empty, "20250825T000000Z-aaaaaaaa", NOW)
    with pytest.raises(ConcurrentUpdateError):
        store.commit(PriceBook("USD", rows), empty, "20250825T000001Z-bbbbbbbb", NOW)
    current = store.load("USD")
    assert current.book == PriceBook("USD", rows[:10]) and current.generation == winner.generation
    # Once a pointer exists, a sync holding its older ETag loses to the one that switched it since.
    newer = store.commit(PriceBook("USD", rows[:20]), current, "20250825T000002Z-cccccccc", NOW)
    with pytest.raises(ConcurrentUpdateError):
        store.commit(PriceBook("USD", rows), current, "20250825T000003Z-eeeeeeee", NOW)
    assert store.load("USD").generation == newer.generation


def test_a_book_larger_than_one_transaction_spans_partitions(settings: Settings) -> None:
    base = parse_feed(json.loads(f"[{','.join(raw_lines())}]", parse_float=Decimal)).prices[0]
    from dataclasses import replace

    regions = [f"region{i:03d}" for i in range(250)]
    rows = tuple(replace(base, key=replace(base.key, region=region)) for region in regions)
    store = table_store_for(settings)
    committed = store.commit(PriceBook("USD", rows), store.load("USD"), "20250825T000000Z-dddddddd", NOW)
    assert store.load("USD").book == PriceBook("USD", rows)
    partitions = {e["PartitionKey"] for e in all_entities(settings)} - {"pointer"}
    assert partitions == {f"{committed.generation}-{n:04d}" for n in range(3)}
