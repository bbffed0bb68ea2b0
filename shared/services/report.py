"""The usage report's steps: parameters parsed and checked, a read plan, rows read in storage order
and grouped block by block, costed, and cut into pages that resume where the last one stopped.

Reads are always key-range queries: one partition (subscription) at a time when the caller names
up to :data:`SINGLE_PARTITION_READS` subscriptions or is scoped to that few; the period's RowKey
range across partitions otherwise (every subscription, or many: then the rows of the others are
dropped as they are read).  Product, model and deployment filters and ``groupBy`` are applied to
the rows read; cost comes per stored row (each at the price of its own date), priced one storage
page at a time, and is summed with the counters, so a grouped row's cost is exact.

Rows come in storage order: partition (subscription), then period.  A **block** is what can be
grouped without looking further: one subscription's period when the subscription is grouped (or
only one is read) — rows are then listed subscription by subscription, period by period — and a
window of periods of every subscription read when rows of several subscriptions are summed
(:data:`MERGE_WINDOWS`; rows then go period by period).  Memory holds one block and one storage
page (two for the CSV, which fetches the next page while it prices one), whatever the range; a
page of the report resumes from a :class:`Position` (the read, the Table continuation of the
storage page where its block starts, the block, the last row sent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from shared.core.cost_centers import UNASSIGNED
from shared.core.keys import partition_key, period_code
from shared.core.moments import MAX_RANGE_DAYS, iso, parse_range
from shared.core.months import month_start
from shared.core.paging import Continuation, StoragePage
from shared.core.pricing import Cost, PriceTable
from shared.core.usage import Counters, Granularity, UsageRow
from shared.errors import InvalidRequestError
from shared.ports import UsageRepository
from shared.services.costing import SINGLE_PARTITION_READS, usage_costs

if TYPE_CHECKING:
    from shared.core.access import Scope

MAX_RANGE = timedelta(days=MAX_RANGE_DAYS)
MAX_FILTER_VALUES = 200  # values of one filter parameter (repeated and/or comma-separated)
GROUP_FIELDS = ("subscription", "product", "model", "deployment")  # groupBy fields, in output (and sort) order
# Asked for by name only (never part of the default): a subscription's cost center, looked up in the
# subscription directory when the rows are grouped (shared.core.cost_centers; "unassigned" without one).
COST_CENTER = "costCenter"
# The APIM service (gateway) of a row ("" when none or merged).  A subscription is known by its name
# *on its service*: wherever subscriptions are grouped, the service is grouped too (grouped_fields),
# so two gateways' same-named subscriptions are never summed.  Asked alone: one row per gateway.
APIM_SERVICE = "apimService"
# The service tier a row's requests were served at ("priority", or "" for the default tier): priority
# tokens are billed by other meters, so wherever deployments are grouped the tier is grouped too
# (grouped_fields) and a deployment's priority use is a row of its own.  Asked alone: one row per tier.
SERVICE_TIER = "serviceTier"
ALL_GROUP_FIELDS = (COST_CENTER, *GROUP_FIELDS, APIM_SERVICE, SERVICE_TIER)
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 5000


@dataclass(frozen=True)
class UsageQuery:
    subscriptions: tuple[str, ...]
    start: datetime
    end: datetime  # exclusive
    granularity: Granularity
    products: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    deployments: tuple[str, ...] = ()
    group_by: tuple[str, ...] = field(default=GROUP_FIELDS)
    apim_services: tuple[str, ...] = ()  # lower-cased, as the rows store them

    def matches(self, row: UsageRow) -> bool:
        return ((not self.products or row.key.product_id in self.products)
                and (not self.models or row.key.model in self.models)
                and (not self.deployments or row.key.deployment in self.deployments)
                and (not self.apim_services or row.key.apim_service in self.apim_services))



def _names(values: Sequence[str] | None, parameter: str) -> tuple[str, ...]:
    """Repeated and/or comma-separated values, trimmed, duplicates dropped, order kept; at most
    :data:`MAX_FILTER_VALUES` (a 400 naming ``parameter`` and the limit beyond)."""
    parts = (part.strip() for value in values or () for part in value.split(","))
    names = tuple(dict.fromkeys(part for part in parts if part))
    if len(names) > MAX_FILTER_VALUES:
        raise InvalidRequestError(parameter, f"at most {MAX_FILTER_VALUES} values, got {len(names)}; "
                                             "ask for fewer (no subscription filter = every subscription)")
    return names


def parse_group_by(values: Sequence[str] | None) -> tuple[str, ...]:
    """``groupBy`` values (repeated or comma-separated) in canonical order; absent = every key field."""
    names = [name.lower() for name in _names(values, "groupBy")]
    known = {field.lower() for field in ALL_GROUP_FIELDS}
    for name in names:
        if name not in known:
            raise InvalidRequestError("groupBy", f"must be any of {', '.join(ALL_GROUP_FIELDS)}, got {name!r}")
    return tuple(f for f in ALL_GROUP_FIELDS if f.lower() in names) if names else GROUP_FIELDS


def grouped_fields(group_by: Sequence[str]) -> tuple[str, ...]:
    """The fields rows are summed by: ``group_by``, then the APIM service whenever the subscription is
    grouped (see :data:`APIM_SERVICE`) and the service tier whenever the deployment is (see
    :data:`SERVICE_TIER`)."""
    implied = [name for name, by in ((APIM_SERVICE, "subscription"), (SERVICE_TIER, "deployment"))
               if by in group_by and name not in group_by]
    return (*group_by, *implied) if implied else tuple(group_by)


def parse_page_size(value: int | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidRequestError("pageSize", f"must be between 1 and {MAX_PAGE_SIZE}, got {value}")
    return value


def parse_usage_query(subscriptions: Sequence[str] | None, start: str | None, end: str | None,
                      granularity: str | None, now: datetime, *, products: Sequence[str] | None = None,
                      models: Sequence[str] | None = None, deployments: Sequence[str] | None = None,
                      group_by: Sequence[str] | None = None, apim_services: Sequence[str] | None = None) -> UsageQuery:
    """``from`` is inclusive; a date-only ``to`` includes that whole day, a datetime ``to`` is exclusive.

    Defaults: month to date, daily rows, every key field kept.
    """
    try:
        grain = Granularity((granularity or "day").strip().lower())
    except ValueError:
        raise InvalidRequestError("granularity", f"must be hour, day or month, got {granularity!r}") from None
    begin, finish = parse_range(start, end, now, lambda _: month_start(now))
    return UsageQuery(_names(subscriptions, "subscription"), grain.period_start(begin), finish, grain,
                      _names(products, "product"), _names(models, "model"), _names(deployments, "deployment"),
                      parse_group_by(group_by),
                      # APIM service names are case-insensitive, stored lower-cased
                      tuple(dict.fromkeys(name.lower() for name in _names(apim_services, APIM_SERVICE))))


def read_usage(repository: UsageRepository, query: UsageQuery, scope: Scope | None = None) -> list[UsageRow]:
    """The stored rows of the query, filtered, in report order.

    With subscriptions named, or a caller scoped to some, each is one single-partition RowKey-range
    read; only an unrestricted caller asking for every subscription reads the period's RowKey range
    across partitions.  A named subscription outside the caller's scope is a 403.
    """
    if scope is None:
        subscriptions: tuple[str, ...] | None = query.subscriptions or None
    else:
        subscriptions = scope.subscriptions_for(query.subscriptions)
    if subscriptions is None:
        rows = repository.read_all(query.granularity, query.start, query.end)
    else:
        rows = [row for sub in subscriptions for row in repository.read(sub, query.granularity, query.start,
                                                                         query.end)]
    return sorted((row for row in rows if query.matches(row)),
                  key=lambda r: (r.period_start, r.key.subscription_id, r.key.product_id, r.key.model,
                                 r.key.deployment, r.key.apim_service, r.key.service_tier))


# -- grouped, costed rows -------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportRow:
    """One output row: a period and the values of the ``groupBy`` fields, summed over the others."""

    period_start: datetime
    values: tuple[str, ...]  # one per field of grouped_fields(the query's group_by)
    counters: Counters
    cost: Cost

    def sort_key(self) -> tuple[str, ...]:
        return (iso(self.period_start), *self.values)


_FIELD_ATTRIBUTE = {"subscription": "subscription_id", "product": "product_id", "model": "model",
                    "deployment": "deployment", APIM_SERVICE: "apim_service", SERVICE_TIER: "service_tier"}


def _field_value(row: UsageRow, name: str) -> str:
    return str(getattr(row.key, _FIELD_ATTRIBUTE[name]))


class Grouping:
    """Rows (and their costs) summed per period x ``group_by`` values, as they are added."""

    def __init__(self, group_by: Sequence[str], cost_center_of: Callable[[str], str] | None = None) -> None:
        self._group_by = grouped_fields(group_by)
        self._cost_center_of = cost_center_of or (lambda _: UNASSIGNED)
        self._sums: dict[tuple[datetime, tuple[str, ...]], tuple[Counters, Cost]] = {}

    def add(self, row: UsageRow, cost: Cost) -> None:
        slot = (row.period_start, tuple(self._cost_center_of(row.key.subscription_id) if name == COST_CENTER
                                        else _field_value(row, name) for name in self._group_by))
        summed = self._sums.get(slot)
        # most slots hold one row (every key field grouped): no sum with zero for those
        self._sums[slot] = (row.counters, cost) if summed is None else (summed[0] + row.counters, summed[1] + cost)

    def rows(self) -> list[ReportRow]:
        """The sums so far, sorted by period then values; the grouping starts over empty."""
        grouped = [ReportRow(start, values, counters, cost) for (start, values), (counters, cost) in self._sums.items()]
        self._sums = {}
        return sorted(grouped, key=ReportRow.sort_key)


def group_rows(rows: Sequence[UsageRow], costs: Sequence[Cost], group_by: Sequence[str]) -> list[ReportRow]:
    """Rows (and their costs) summed per period x ``group_by`` values, sorted by that key."""
    grouping = Grouping(group_by)
    for row, cost in zip(rows, costs, strict=True):
        grouping.add(row, cost)
    return grouping.rows()


# -- reading in storage order, block by block ---------------------------------------------------------
# Rows of several subscriptions summed together (subscription not grouped) are grouped over a window
# of periods of every subscription read: hour rows a month of hours at a time; day and month rows
# over the whole range (at most MAX_RANGE_DAYS periods).
MERGE_WINDOWS = {Granularity.HOUR: timedelta(days=31)}
PRICED_TOGETHER = 250  # rows priced in one call (a month's day rows are read once per call)


class UsagePages(Protocol):
    """A usage read one storage page at a time, resumable from a continuation (the adapter:
    :class:`shared.adapters.usage_pages.TableUsagePages`)."""

    def pages(self, subscription: str | None, granularity: Granularity, start: datetime, end: datetime,
              resume: Continuation | None = None) -> Iterator[StoragePage]:
        """One partition's rows (``subscription``) or every partition's, period in ``[start, end)``."""
        ...


class ListedPages:
    """:class:`UsagePages` over a plain :class:`UsageRepository`: each read is one page (no
    continuation).  For repositories without paged reads (fakes in tests)."""

    def __init__(self, repository: UsageRepository) -> None:
        self._repository = repository

    def pages(self, subscription: str | None, granularity: Granularity, start: datetime, end: datetime,
              resume: Continuation | None = None) -> Iterator[StoragePage]:
        if subscription is None:
            rows = self._repository.read_all(granularity, start, end)
        else:
            rows = self._repository.read(subscription, granularity, start, end)
        yield StoragePage(None, rows, None)


@dataclass(frozen=True)
class Read:
    """One storage read of the plan: a partition (``subscription``) or every partition."""

    subscription: str | None
    start: datetime
    end: datetime
    window: int  # the merge window it belongs to (0 when rows are not merged across subscriptions)


@dataclass(frozen=True)
class ReadPlan:
    reads: tuple[Read, ...]
    keep: frozenset[str] | None  # rows of only these subscriptions (several read across partitions)
    merged: bool  # rows of several subscriptions are summed: a block is a window of periods

    def block_start(self, index: int, page: StoragePage, block: tuple[str, ...]) -> Position:
        """Where a block whose first row is on ``page`` of read ``index`` starts: there, or at the
        first read of its window when rows are merged (a window's sums take every read of it)."""
        if self.merged:
            window = self.reads[index].window
            return Position(next(i for i, read in enumerate(self.reads) if read.window == window), None, block)
        return Position(index, page.start, block)

    def ends_block(self, index: int) -> bool:
        """Whether the end of read ``index`` ends the block being read (a window's last read, or any
        read when rows are not merged)."""
        following = index + 1
        return (not self.merged or following >= len(self.reads)
                or self.reads[following].window != self.reads[index].window)

    def block_of(self, read: Read, row: UsageRow) -> tuple[str, ...]:
        """The block a row belongs to; blocks come in this (string) order within a read."""
        if self.merged:
            return (f"{read.window:05d}",)
        return (partition_key(row.key.subscription_id), period_code(row.granularity, row.period_start))


def plan_reads(query: UsageQuery, scope: Scope | None = None) -> ReadPlan:
    """The storage reads of the query, in the order their rows are listed.  A named subscription
    outside the caller's scope is a 403."""
    subscriptions = (query.subscriptions or None) if scope is None else scope.subscriptions_for(query.subscriptions)
    keep: frozenset[str] | None = None
    if subscriptions is None or len(subscriptions) > SINGLE_PARTITION_READS:
        # every subscription, or many: one RowKey-range read across partitions beats a read per partition
        partitions: list[str | None] = [None]
        keep = None if subscriptions is None else frozenset(subscriptions)
    else:
        ordered: list[str | None] = [*sorted(subscriptions, key=partition_key)]  # a cross-partition read's order
        partitions = ordered
    merged = "subscription" not in query.group_by and (subscriptions is None or len(subscriptions) > 1)
    windows = [(query.start, query.end)]
    span = MERGE_WINDOWS.get(query.granularity)
    if merged and span is not None:
        windows, edge = [], query.start
        while edge < query.end:
            windows.append((edge, min(edge + span, query.end)))
            edge += span
    reads = tuple(Read(sub, start, end, index) for index, (start, end) in enumerate(windows) for sub in partitions)
    return ReadPlan(reads, keep, merged)


@dataclass(frozen=True)
class Position:
    """Where a report resumes: the plan's read, the Table continuation of the storage page holding
    the block's first row (``None``: the read's first page), the block, and the sort key of the last
    row of that block already sent (``None``: none sent)."""

    read: int
    continuation: Continuation | None
    block: tuple[str, ...]
    after: tuple[str, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"r": self.read, "c": None if self.continuation is None else list(self.continuation),
                "b": list(self.block), "a": None if self.after is None else list(self.after)}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Position:
        """The position a token carried (signed by us: a malformed one is a bug, not an attack)."""
        continuation = data["c"]
        after = data["a"]
        return Position(int(data["r"]), None if continuation is None else (str(continuation[0]),
                        None if continuation[1] is None else str(continuation[1])),
                        tuple(str(b) for b in data["b"]), None if after is None else tuple(str(a) for a in after))


def priced_blocks(pages: UsagePages, repository: UsageRepository, table: PriceTable, query: UsageQuery,
                  plan: ReadPlan, resume: Position | None = None, *,
                  cost_center_of: Callable[[str], str] | None = None,
                  read_ahead: bool = False) -> Iterator[tuple[Position, list[ReportRow]]]:
    """Every block from ``resume`` on (the whole result without), in storage order: its grouped,
    costed rows sorted by period then values, and the position of its start.  The rows of a block
    already partly sent (``resume.after``) are left out up to the last one sent.

    ``read_ahead``: fetch each storage page while the one before is priced (:func:`read_ahead`), for
    a caller that reads on to the end anyway (the CSV); a page of the JSON report stops early and
    would fetch a page for nothing."""
    grouping = Grouping(query.group_by, cost_center_of)
    current: tuple[str, ...] | None = None
    start: Position | None = None

    def finished() -> list[ReportRow]:
        rows = grouping.rows()
        if resume is not None and resume.after is not None and current == resume.block:
            rows = [row for row in rows if row.sort_key() > resume.after]
        return rows

    first = resume.read if resume is not None else 0
    for index in range(first, len(plan.reads)):
        read = plan.reads[index]
        resumed = resume is not None and index == first
        continuation = resume.continuation if resume is not None and resumed else None
        fetched = pages.pages(read.subscription, query.granularity, read.start, read.end, continuation)
        for page in read_ahead_of(fetched) if read_ahead else fetched:
            kept = [row for row in page.rows if query.matches(row)
                    and (plan.keep is None or row.key.subscription_id in plan.keep)]
            if resumed and resume is not None:  # rows before the resumed block were sent already
                kept = [row for row in kept if plan.block_of(read, row) >= resume.block]
            for first_row in range(0, len(kept), PRICED_TOGETHER):
                # priced a slice at a time: a page that stops early leaves the rest of the storage page unpriced
                chunk = kept[first_row:first_row + PRICED_TOGETHER]
                for row, cost in zip(chunk, usage_costs(chunk, repository, table), strict=True):
                    block = plan.block_of(read, row)
                    if block != current:
                        if current is not None and start is not None:
                            yield start, finished()
                        current, start = block, plan.block_start(index, page, block)
                    grouping.add(row, cost)
        # A block never spans two partitions' reads, nor two windows: flush it at the end of its
        # read rather than after reading on for the next block's first row.
        if current is not None and start is not None and plan.ends_block(index):
            yield start, finished()
            current = start = None


def read_ahead_of(pages: Iterator[StoragePage]) -> Iterator[StoragePage]:
    """``pages``, each fetched (in a thread) while the caller works on the one before: the storage
    round trip of the next page overlaps the pricing, grouping and writing of this one, instead of
    adding to it.  Memory: one page more.  Stopped early, it waits for the fetch in flight."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-read-ahead") as fetcher:
        try:
            following = fetcher.submit(next, pages, None)
            while (page := following.result()) is not None:
                following = fetcher.submit(next, pages, None)
                yield page
        finally:
            fetcher.shutdown(wait=True)  # no fetch in flight before the reader is closed
            close = getattr(pages, "close", None)
            if close is not None:
                close()


def _rows_of(blocks: Iterable[tuple[Position, list[ReportRow]]]) -> Iterator[ReportRow]:
    for _, rows in blocks:
        yield from rows


def every_row(pages: UsagePages, repository: UsageRepository, table: PriceTable, query: UsageQuery,
              plan: ReadPlan, *, cost_center_of: Callable[[str], str] | None = None) -> Iterator[ReportRow]:
    """The whole result, as it is read (CSV), the next storage page fetched while one is priced."""
    return _rows_of(priced_blocks(pages, repository, table, query, plan, cost_center_of=cost_center_of,
                                  read_ahead=True))


@dataclass
class Page:
    """One page of the report: its rows, where the next resumes, and (when asked to run to the end)
    the whole result's sums and row count."""

    rows: list[ReportRow]
    following: Position | None
    counters: Counters = field(default_factory=Counters)
    cost: Cost = field(default_factory=Cost)
    row_count: int = 0


def cut_page(blocks: Iterable[tuple[Position, list[ReportRow]]], size: int, whole: bool) -> Page:
    """The first ``size`` rows of ``blocks`` and the position after them.  ``whole``: read on to the
    end for the sums and row count of the whole result (the first page); otherwise stop at once."""
    page = Page([], None)
    last: Position | None = None  # the block of the last row on the page
    for position, rows in blocks:
        for row in rows:
            if len(page.rows) < size:
                page.rows.append(row)
                last = position
            elif page.following is None and last is not None:
                page.following = (Position(last.read, last.continuation, last.block, page.rows[-1].sort_key())
                                  if position == last else position)
                if not whole:
                    return page
            if whole:
                page.counters = page.counters + row.counters
                page.cost = page.cost + row.cost
                page.row_count += 1
    return page
