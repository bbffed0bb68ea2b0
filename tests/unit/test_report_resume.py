"""Report pages resume exactly where the last one stopped, for any storage page size and report page
size, grouped per subscription (storage order) or summed across subscriptions (window by window):
pure logic over an in-memory paged read, checked against an independent aggregation."""

from __future__ import annotations

import json
from collections import Counter as Tally
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.core.keys import partition_key, row_key
from shared.core.paging import Continuation, StoragePage
from shared.core.pricing import parse_price_file
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.services.report import Position, UsageQuery, cut_page, grouped_fields, plan_reads, priced_blocks

START = datetime(2026, 9, 1, tzinfo=UTC)
PRICES = parse_price_file(json.dumps({"currency": "EUR", "prices": [
    {"model": "m1", "effectiveFrom": "2026-01-01", "input": "1.00", "cachedInput": "0.50", "output": "2.00"}]}),
    "test")


def stored_rows() -> list[UsageRow]:
    out = []
    for s, sub in enumerate(("a", "b", "c")):
        for h in range(0, 24 * 45, 23):  # 45 days: two merge windows of hour rows
            for model in ("m1", "m2"):
                out.append(UsageRow(Granularity.HOUR, START + timedelta(hours=h), UsageKey(sub, "p", model, "d"),
                                    Counters(requests=1 + s, prompt_tokens=h + s, total_tokens=h + s + 1)))
    return out


class MemoryPages:
    """Rows in Table Storage order, served ``size`` at a time with (partition, row key) continuations."""

    def __init__(self, rows: list[UsageRow], size: int) -> None:
        self.size = size
        self.rows = sorted(rows, key=self._keys)
        self.fetched = 0

    @staticmethod
    def _keys(row: UsageRow) -> tuple[str, str]:
        return partition_key(row.key.subscription_id), row_key(row.granularity, row.period_start, row.key)

    def pages(self, subscription: str | None, granularity: Granularity, start: datetime, end: datetime,
              resume: Continuation | None = None) -> Iterator[StoragePage]:
        matching = [r for r in self.rows if r.granularity is granularity and start <= r.period_start < end
                    and (subscription is None or r.key.subscription_id == subscription)]
        at = 0 if resume is None else next(i for i, r in enumerate(matching) if self._keys(r) >= (resume[0],
                                                                                                    resume[1] or ""))
        current = resume
        while True:
            chunk = matching[at:at + self.size]
            self.fetched += len(chunk)
            following = None
            if at + self.size < len(matching):
                following = self._keys(matching[at + self.size])
            yield StoragePage(current, chunk, following)
            if following is None:
                return
            at, current = at + self.size, following


class NoFinerRows:
    def read(self, *_: object) -> list[UsageRow]:
        return []

    def read_all(self, *_: object) -> list[UsageRow]:
        return []

    def upsert(self, rows: object) -> int:
        return 0


def every_page(pages: MemoryPages, query: UsageQuery, size: int) -> tuple[list[tuple[str, ...]], list[int]]:
    plan = plan_reads(query)
    first = cut_page(priced_blocks(pages, NoFinerRows(), PRICES, query, plan), size, whole=True)
    rows, resume, fetched = [r.sort_key() for r in first.rows], first.following, []
    assert first.row_count >= len(rows)
    while resume is not None:
        before = pages.fetched
        # the position travels as JSON in the token
        page = cut_page(priced_blocks(pages, NoFinerRows(), PRICES, query, plan,
                                      Position.from_json(json.loads(json.dumps(resume.as_json())))), size, whole=False)
        fetched.append(pages.fetched - before)
        rows += [r.sort_key() for r in page.rows]
        assert len(page.rows) == size or page.following is None
        resume = page.following
    assert len(rows) == first.row_count
    return rows, fetched


def expected(group_by: tuple[str, ...]) -> Tally[tuple[str, ...]]:
    out: Tally[tuple[str, ...]] = Tally()
    for row in stored_rows():
        values = {"subscription": row.key.subscription_id, "product": row.key.product_id, "model": row.key.model,
                  "deployment": row.key.deployment, "apimService": row.key.apim_service}
        out[(row.period_start.isoformat().replace("+00:00", "Z"), *(values[f] for f in grouped_fields(group_by)))] += 1
    return out


@pytest.mark.parametrize("storage_page", [1, 7, 1000])
@pytest.mark.parametrize("report_page", [5, 100])
@pytest.mark.parametrize("subscriptions", [(), ("c", "a")])
def test_grouped_per_subscription_pages_reassemble_in_storage_order(storage_page: int, report_page: int,
                                                                   subscriptions: tuple[str, ...]) -> None:
    group_by = ("subscription", "model")
    query = UsageQuery(subscriptions, START, START + timedelta(days=45), Granularity.HOUR, group_by=group_by)
    pages = MemoryPages(stored_rows(), storage_page)
    rows, fetched = every_page(pages, query, report_page)
    wanted = {k: v for k, v in expected(group_by).items() if not subscriptions or k[1] in subscriptions}
    assert Tally(rows) == Tally(wanted.keys()) and len(rows) == len(wanted)  # each row once
    assert rows == sorted(rows, key=lambda k: (k[1], k[0], k[2]))  # subscription, period, model
    # a later page fetches what it lists plus at most about a storage page on each side, never the range again
    assert max(fetched) <= report_page + 2 * storage_page + 2, fetched


@pytest.mark.parametrize("storage_page", [5, 300])
@pytest.mark.parametrize("report_page", [9, 400])
def test_rows_summed_across_subscriptions_reassemble_period_by_period(storage_page: int, report_page: int) -> None:
    query = UsageQuery((), START, START + timedelta(days=45), Granularity.HOUR, group_by=("model",))
    pages = MemoryPages(stored_rows(), storage_page)
    rows, fetched = every_page(pages, query, report_page)
    assert rows == sorted(expected(("model",)))
    per_window = len(stored_rows()) * 31 // 45 + storage_page  # one window of every subscription's rows
    assert max(fetched, default=0) <= 2 * per_window, fetched
