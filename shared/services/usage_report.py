"""The ``/api/usage`` use case: parameters -> one page (or every row, streamed) of grouped, costed usage.

Parse and check the parameters, continue from a page token (verified, and bound to the same query
and caller), read the rows in the caller's scope in storage order, price them at read time, group
them block by block (:mod:`shared.services.report`), cut the page and seal the token of the next
one.  A page never re-reads what an earlier page covered: the token carries where the next one
resumes (the Table continuation of the storage page and the last row sent).

``totals`` and ``rowCount`` describe the whole result.  The first page reads on to the end of the
range to compute them (memory: one block and one storage page) and seals them into the token; the
following pages repeat them from the token.  So the first page of a long report costs one pass over
its range, every later page only its own rows.

The result is a domain object; rendering it as JSON or CSV is the presenter's job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.core.access import Scope
from shared.core.paging import TOKEN_TTL, PageToken, check_binding, open_token, query_digest, seal
from shared.core.pricing import Cost, PriceTable
from shared.core.usage import Counters
from shared.errors import InvalidRequestError
from shared.ports import UsageRepository
from shared.services.report import (
    Position,
    ReportRow,
    UsagePages,
    UsageQuery,
    cut_page,
    every_row,
    parse_page_size,
    parse_usage_query,
    plan_reads,
    priced_blocks,
)


@dataclass(frozen=True)
class UsageRequest:
    """The parameters as the caller sent them (lists repeated and/or comma-separated)."""

    subscriptions: Sequence[str] | None = None
    products: Sequence[str] | None = None
    models: Sequence[str] | None = None
    deployments: Sequence[str] | None = None
    start: str | None = None
    end: str | None = None
    granularity: str | None = None
    group_by: Sequence[str] | None = None
    page_size: int | None = None
    next_token: str | None = None
    apim_services: Sequence[str] | None = None


@dataclass(frozen=True)
class Totals:
    """The whole result's sums, as the first page computes them."""

    counters: Counters
    cost: Cost
    row_count: int


# How the first page's totals travel in the token: rendered once (the presenter's JSON), repeated as is.
RenderTotals = Callable[[Totals, str], Mapping[str, Any]]


@dataclass(frozen=True)
class UsageReport:
    query: UsageQuery  # the window of the first page when continuing
    currency: str
    page: list[ReportRow]  # what this response lists
    totals: Mapping[str, Any]  # the whole result's totals, rendered (RenderTotals)
    row_count: int  # rows of the whole result
    page_size: int
    next_token: str | None  # continues after ``page``; None on the last page


@dataclass(frozen=True)
class UsageRows:
    """Every row of the report (CSV), produced as the storage pages are read."""

    query: UsageQuery
    currency: str
    rows: Iterator[ReportRow]


def _digest(query: UsageQuery, start: str | None, end: str | None) -> str:
    """The page-token binding: the parameters as asked (``from``/``to`` as given, so a defaulted
    "now" does not change between pages: the token pins the resolved window instead)."""
    return query_digest({"subscription": sorted(query.subscriptions), "product": sorted(query.products),
                         "model": sorted(query.models), "deployment": sorted(query.deployments),
                         "from": (start or "").strip(), "to": (end or "").strip(),
                         "granularity": query.granularity.value, "groupBy": list(query.group_by),
                         # only when given: a token issued before this filter existed stays valid
                         **({"apimService": sorted(query.apim_services)} if query.apim_services else {})})


def _query(request: UsageRequest, now: datetime) -> UsageQuery:
    return parse_usage_query(request.subscriptions, request.start, request.end, request.granularity, now,
                             products=request.products, models=request.models, deployments=request.deployments,
                             group_by=request.group_by, apim_services=request.apim_services)


def usage_report(request: UsageRequest, scope: Scope, now: datetime, repository: UsageRepository,
                 pages: UsagePages, prices: Callable[[], PriceTable], token_key: Callable[[], bytes],
                 render_totals: RenderTotals, *, cost_center_of: Callable[[str], str] | None = None) -> UsageReport:
    """One page of the report.

    ``prices`` and ``token_key`` are asked only when needed, so a request refused for its parameters
    reads no price file, and a first and only page needs no token key.  ``repository`` serves the
    reads pricing needs beyond the rows (a month's day rows when a price changes inside it).
    ``cost_center_of`` maps a subscription to its cost center for ``groupBy=costCenter`` (asked only
    when rows are grouped by it; without one every subscription is ``unassigned``).
    """
    size = parse_page_size(request.page_size)
    query = _query(request, now)
    digest = _digest(query, request.start, request.end)
    resume: Position | None = None
    carried: Mapping[str, Any] = {}
    if request.next_token:
        token = open_token(token_key(), request.next_token, now)
        check_binding(token, digest, scope.digest())
        query = replace(query, start=token.start, end=token.end)
        try:  # signed by us: malformed only if issued by another version of this code
            resume, carried = Position.from_json(dict(token.position)), token.carried
            carried = {"totals": dict(carried["totals"]), "rowCount": int(carried["rowCount"])}
        except (KeyError, TypeError, ValueError, IndexError):
            raise InvalidRequestError("next", "not a valid page token; start again without it") from None
    plan = plan_reads(query, scope)
    table = prices()
    blocks = priced_blocks(pages, repository, table, query, plan, resume, cost_center_of=cost_center_of)
    page = cut_page(blocks, size, whole=resume is None)
    if resume is None:
        totals = render_totals(Totals(page.counters, page.cost, page.row_count), table.currency)
        carried = {"totals": totals, "rowCount": page.row_count}
    following = None
    if page.following is not None:
        following = seal(token_key(), PageToken(digest, scope.digest(), query.start, query.end,
                                                page.following.as_json(), now + TOKEN_TTL, carried))
    return UsageReport(query, table.currency, page.rows, carried["totals"], carried["rowCount"], size, following)


def usage_rows(request: UsageRequest, scope: Scope, now: datetime, repository: UsageRepository,
               pages: UsagePages, prices: Callable[[], PriceTable], *,
               cost_center_of: Callable[[str], str] | None = None) -> UsageRows:
    """Every row (CSV is never paged), as an iterator that reads storage page by storage page.

    Parameters, scope and prices are checked here, before any row is produced, so a refused request
    is still a clean 4xx; a storage failure once rows flow ends the stream.
    """
    if request.next_token:
        raise InvalidRequestError("next", "CSV is never paged: ask without a page token")
    query = _query(request, now)
    plan = plan_reads(query, scope)
    table = prices()
    return UsageRows(query, table.currency, every_row(pages, repository, table, query, plan,
                                                      cost_center_of=cost_center_of))

