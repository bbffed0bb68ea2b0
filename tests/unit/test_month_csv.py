"""The org-wide month CSV kept once rendered (shared.services.month_csv), on in-memory fakes: which
requests are kept, that a kept report is served only under the same generation, pricing and code,
that nothing is kept while the month's rows change or when the stream stops part way, and that a
report served as kept is byte for byte the live rendering."""

from __future__ import annotations

import csv
import io
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from shared.api.presenters import usage_csv as render
from shared.core.access import Scope
from shared.core.pricing import PriceTable
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.services.month_csv import REPORT, kept_month, usage_csv
from shared.services.report import UsagePages, parse_usage_query
from shared.services.usage_report import UsageRequest, UsageRows
from tests.unit.test_report_resume import PRICES, MemoryPages, NoFinerRows

NOW = datetime(2026, 12, 2, tzinfo=UTC)
OCTOBER = UsageRequest(start="2026-10-01", end="2026-10-31", granularity="month")
ADMIN = Scope.unrestricted(admin=True)


def month_rows(requests: int = 3) -> list[UsageRow]:
    october = datetime(2026, 10, 1, tzinfo=UTC)
    return [UsageRow(Granularity.MONTH, october, UsageKey(sub, "p", "m1", "d"),
                     Counters(requests=requests + i, prompt_tokens=1000 * (i + 1), completion_tokens=10 * i,
                              total_tokens=1000 * (i + 1) + 10 * i))
            for i, sub in enumerate(("a", "b", "c"))]


@dataclass
class Writer:
    store: MemoryReports
    key: tuple[str, str, str]
    text: list[str] = field(default_factory=list)
    fail: bool = False

    def add(self, text: str) -> None:
        self.text.append(text)

    def commit(self) -> bool:
        if self.fail:
            raise OSError("storage went away")
        self.store.kept[self.key] = "".join(self.text)
        return True


@dataclass
class MemoryReports:
    generations: dict[str, str | None] = field(default_factory=dict)
    kept: dict[tuple[str, str, str], str] = field(default_factory=dict)
    reads: int = 0
    fail_commit: bool = False

    def generation(self, month: str) -> str | None:
        return self.generations.get(month, "-")

    def read(self, report: str, month: str, inputs: str) -> Iterator[str] | None:
        self.reads += 1
        text = self.kept.get((report, month, inputs))
        return iter([text]) if text is not None else None

    def writer(self, report: str, month: str, inputs: str) -> Writer:
        return Writer(self, (report, month, inputs), fail=self.fail_commit)


def prices(fingerprint: str = "p1") -> tuple[PriceTable, str]:
    return PRICES, fingerprint


def served(pages: UsagePages, store: MemoryReports | None, request: UsageRequest = OCTOBER,
           scope: Scope = ADMIN, fingerprint: str = "p1") -> tuple[str, bool]:
    report = usage_csv(request, scope, NOW, NoFinerRows(), pages, lambda: prices(fingerprint), render, kept=store)
    return "".join(report.chunks), report.kept


def live(pages: UsagePages) -> str:
    query = parse_usage_query(None, OCTOBER.start, OCTOBER.end, OCTOBER.granularity, NOW)
    from shared.services.report import every_row, plan_reads

    rows = every_row(pages, NoFinerRows(), PRICES, query, plan_reads(query, ADMIN))
    return "".join(render(UsageRows(query, PRICES.currency, rows)))


@pytest.mark.parametrize(("request_", "scope", "kept"), [
    (OCTOBER, ADMIN, "2026-10"),
    (UsageRequest(start="2026-10-01", end="2026-10-31", granularity="month", group_by=["subscription", "product",
                                                                                       "model", "deployment"]),
     ADMIN, "2026-10"),
    (OCTOBER, Scope("principal:x", frozenset({"a"})), None),  # a team's own view
    (UsageRequest(start="2026-10-01", end="2026-10-31", granularity="day"), ADMIN, None),
    (UsageRequest(start="2026-10-01", end="2026-10-15", granularity="month"), ADMIN, None),
    (UsageRequest(start="2026-10-01", end="2026-11-30", granularity="month"), ADMIN, None),
    (UsageRequest(subscriptions=["a"], start="2026-10-01", end="2026-10-31", granularity="month"), ADMIN, None),
    (UsageRequest(models=["m1"], start="2026-10-01", end="2026-10-31", granularity="month"), ADMIN, None),
    (UsageRequest(apim_services=["gw"], start="2026-10-01", end="2026-10-31", granularity="month"), ADMIN, None),
    (UsageRequest(start="2026-10-01", end="2026-10-31", granularity="month", group_by=["model"]), ADMIN, None),
])
def test_only_the_org_wide_whole_month_is_kept(request_: UsageRequest, scope: Scope, kept: str | None) -> None:
    query = parse_usage_query(request_.subscriptions, request_.start, request_.end, request_.granularity, NOW,
                              models=request_.models, group_by=request_.group_by,
                              apim_services=request_.apim_services)
    assert kept_month(query, scope) == kept


def test_the_second_request_is_served_as_kept_byte_for_byte() -> None:
    pages, store = MemoryPages(month_rows(), 2), MemoryReports()
    first, first_kept = served(pages, store)
    fetched = pages.fetched
    second, second_kept = served(pages, store)
    assert (first_kept, second_kept) == (False, True)
    assert first == second == live(MemoryPages(month_rows(), 2))
    assert pages.fetched == fetched  # the kept one read no usage row
    by_subscription = {row["subscriptionId"]: row for row in csv.DictReader(io.StringIO(second))}
    assert {sub: int(row["requests"]) for sub, row in by_subscription.items()} == {"a": 3, "b": 4, "c": 5}
    assert len(store.kept) == 1 and next(iter(store.kept))[:2] == (REPORT, "2026-10")


def test_a_new_generation_pricing_or_currency_renders_again() -> None:
    store = MemoryReports()
    served(MemoryPages(month_rows(), 2), store)
    store.generations["2026-10"] = "g2"  # the month's rows were written again
    text, kept = served(MemoryPages(month_rows(requests=10), 2), store)
    assert not kept and {int(r["requests"]) for r in csv.DictReader(io.StringIO(text))} == {10, 11, 12}
    text, kept = served(MemoryPages(month_rows(requests=10), 2), store, fingerprint="p2")  # a price changed
    assert not kept
    assert served(MemoryPages(month_rows(requests=10), 2), store, fingerprint="p2") == (text, True)
    assert len(store.kept) == 3


def test_nothing_is_kept_or_served_while_the_month_is_being_written() -> None:
    store = MemoryReports()
    served(MemoryPages(month_rows(), 2), store)
    reads = store.reads
    store.generations["2026-10"] = None
    assert served(MemoryPages(month_rows(requests=7), 2), store)[1] is False
    assert served(MemoryPages(month_rows(requests=7), 2), store)[1] is False
    assert store.reads == reads and len(store.kept) == 1  # neither read nor kept


def test_other_reports_are_rendered_live_and_never_kept() -> None:
    store = MemoryReports()
    day = UsageRequest(start="2026-10-01", end="2026-10-31", granularity="day")
    for _ in range(2):
        assert served(MemoryPages(month_rows(), 2), store, request=day)[1] is False
        assert served(MemoryPages(month_rows(), 2), store, scope=Scope("principal:x", frozenset({"a"})))[1] is False
    assert served(MemoryPages(month_rows(), 2), None)[1] is False
    assert store.kept == {} and store.reads == 0


def test_a_stream_stopped_part_way_is_not_kept() -> None:
    store = MemoryReports()
    report = usage_csv(OCTOBER, ADMIN, NOW, NoFinerRows(), MemoryPages(month_rows(), 1), prices, render, kept=store)
    chunks = report.chunks
    assert isinstance(chunks, Generator)
    next(chunks)
    chunks.close()  # the client went away
    assert store.kept == {}


def test_failing_to_keep_a_report_never_fails_the_response() -> None:
    store = MemoryReports(fail_commit=True)
    text, kept = served(MemoryPages(month_rows(), 2), store)
    assert not kept and text == live(MemoryPages(month_rows(), 2))
    assert store.kept == {}


class Listed:
    """A deployment or negotiated-rate store that lists what it holds."""

    def __init__(self, items: list[object]) -> None:
        self.items = items

    def all(self) -> list[object]:
        return list(self.items)

    def list_overrides(self) -> list[object]:
        return list(self.items)


def test_the_pricing_fingerprint_follows_every_input_and_only_them() -> None:
    from datetime import date
    from decimal import Decimal

    from shared.core.deployments import Deployment
    from shared.core.rate_overrides import RateOverride
    from shared.services.costing import PriceCatalog

    gpt = Deployment("gpt-4o", "acct", "gpt-4o", "2024-08-06", "GlobalStandard", "eastus", None,
                     datetime(2026, 1, 1, tzinfo=UTC))
    discount = RateOverride("gpt-4o", "global", date(2026, 1, 1), discount_percent=Decimal("10"))

    def fingerprint(deployments: list[object], overrides: list[object]) -> str:
        catalog = PriceCatalog(None, deployments=Listed(deployments),  # type: ignore[arg-type]
                               rate_overrides=Listed(overrides))  # type: ignore[arg-type]
        pricing, digest = catalog.current_with_fingerprint()
        assert pricing == catalog.current()
        return digest

    base = fingerprint([gpt], [])
    assert fingerprint([gpt], []) == base  # read again, same inputs: the same digest
    assert fingerprint([], []) != base
    assert fingerprint([gpt], [discount]) != base
    moved = Deployment("gpt-4o", "acct", "gpt-4o", "2024-08-06", "DataZoneStandard", "eastus", None,
                       datetime(2026, 1, 1, tzinfo=UTC))
    assert fingerprint([moved], []) != base
