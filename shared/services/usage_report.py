"""The ``/api/usage`` use case: parameters -> one page (or every row) of grouped, costed usage.

Parse and check the parameters, continue from a page token (verified, and bound to the same query
and caller), read the rows in the caller's scope, price them at read time, group them, cut the page
and seal the token of the next one.  The result is a domain object; rendering it as JSON or CSV is
the presenter's job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from shared.core.access import Scope
from shared.core.paging import TOKEN_TTL, PageToken, check_binding, open_token, query_digest, seal
from shared.core.pricing import PriceTable
from shared.errors import InvalidRequestError
from shared.ports import UsageRepository
from shared.services.costing import usage_costs
from shared.services.report import (
    ReportRow,
    UsageQuery,
    group_rows,
    page_after,
    parse_page_size,
    parse_usage_query,
    read_usage,
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
    every_row: bool = False  # CSV: the whole result, never paged


@dataclass(frozen=True)
class UsageReport:
    query: UsageQuery  # the window of the first page when continuing
    currency: str
    rows: list[ReportRow]  # the whole result: ``totals`` and ``rowCount`` cover these
    page: list[ReportRow]  # what this response lists (every row when ``every_row``)
    page_size: int
    next_token: str | None  # continues after ``page``; None on the last page


def _digest(query: UsageQuery, start: str | None, end: str | None) -> str:
    """The page-token binding: the parameters as asked (``from``/``to`` as given, so a defaulted
    "now" does not change between pages: the token pins the resolved window instead)."""
    return query_digest({"subscription": sorted(query.subscriptions), "product": sorted(query.products),
                         "model": sorted(query.models), "deployment": sorted(query.deployments),
                         "from": (start or "").strip(), "to": (end or "").strip(),
                         "granularity": query.granularity.value, "groupBy": list(query.group_by)})


def usage_report(request: UsageRequest, scope: Scope, now: datetime, repository: UsageRepository,
                 prices: Callable[[], PriceTable], token_key: Callable[[], bytes]) -> UsageReport:
    """One page of the report (or every row).

    ``prices`` and ``token_key`` are asked only when needed, so a request refused for its parameters
    reads no price file, and a first and only page needs no token key.
    """
    size = parse_page_size(request.page_size)
    query = parse_usage_query(request.subscriptions, request.start, request.end, request.granularity, now,
                              products=request.products, models=request.models, deployments=request.deployments,
                              group_by=request.group_by)
    digest = _digest(query, request.start, request.end)
    after: tuple[str, ...] | None = None
    if request.next_token:
        if request.every_row:
            raise InvalidRequestError("next", "CSV is never paged: ask without a page token")
        token = open_token(token_key(), request.next_token, now)
        check_binding(token, digest, scope.digest())
        query, after = replace(query, start=token.start, end=token.end), token.after
    rows = read_usage(repository, query, scope)
    # cost is added at read time from the price table in force per row date (rows stay token-only)
    table = prices()
    grouped = group_rows(rows, usage_costs(rows, repository, table), query.group_by)
    if request.every_row:
        return UsageReport(query, table.currency, grouped, grouped, size, None)
    page, more = page_after(grouped, after, size)
    following = None
    if more:
        following = seal(token_key(), PageToken(digest, scope.digest(), query.start, query.end,
                                                page[-1].sort_key(), now + TOKEN_TTL))
    return UsageReport(query, table.currency, grouped, page, size, following)
