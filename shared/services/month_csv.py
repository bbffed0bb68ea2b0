"""The usage CSV, with the org-wide month kept once rendered.

Finance reads the same report over and over: every subscription's month (``granularity=month``, one
whole calendar month, no filter, the default grouping, a caller who sees every subscription).  At
10,000 subscriptions that is 20,000 rows to read, price and write, seconds per request however the
rows are stored.  So that report, once rendered, is kept (:class:`shared.ports.MonthReportStore`)
under the digest of everything it was made from, and served as it was kept while none of it changed:

- the month's stored rows: their *report generation* (:mod:`shared.adapters.report_generations`),
  which every write of the month's rows changes; while a write is under way nothing is kept or served;
- the pricing (:meth:`shared.services.costing.PriceCatalog.current_with_fingerprint`);
- this code (a digest of the package's source: a new version renders again, never serves an old layout).

A kept report is byte for byte what the live path writes (the live rendering is what is kept, as it
is sent).  Every other CSV, and any request when no store is given, is rendered live.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from shared.core.access import Scope
from shared.core.months import month_start, next_month
from shared.core.pricing import PriceTable
from shared.core.usage import Granularity
from shared.ports import KeptReportWriter, MonthReportStore, UsageRepository
from shared.services.report import GROUP_FIELDS, UsagePages, UsageQuery
from shared.services.usage_report import UsageRequest, UsageRows, usage_rows

log = logging.getLogger(__name__)
REPORT = "usage-month"
PACKAGE = Path(__file__).resolve().parent.parent  # shared/


@dataclass(frozen=True)
class CsvReport:
    query: UsageQuery
    chunks: Iterator[str]
    kept: bool  # served as kept (not rendered for this request)


def kept_month(query: UsageQuery, scope: Scope) -> str | None:
    """The month (``2026-11``) when this is the org-wide month report, else ``None``."""
    whole_month = query.start == month_start(query.start) and query.end == next_month(query.start)
    unfiltered = not (query.subscriptions or query.products or query.models or query.deployments
                      or query.apim_services)
    if (query.granularity is Granularity.MONTH and whole_month and unfiltered and query.group_by == GROUP_FIELDS
            and scope.subscriptions is None):
        return f"{query.start:%Y-%m}"
    return None


@cache
def code_identity() -> str:
    """Digest of this package's source (read once per process)."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode("utf-8"))
        digest.update(path.read_bytes())
    return digest.hexdigest()


def usage_csv(request: UsageRequest, scope: Scope, now: datetime, repository: UsageRepository, pages: UsagePages,
              prices: Callable[[], tuple[PriceTable, str]], render: Callable[[UsageRows], Iterator[str]], *,
              kept: MonthReportStore | None = None,
              cost_center_of: Callable[[str], str] | None = None) -> CsvReport:
    """Every row of the usage report as CSV text: the kept org-wide month when it is current,
    else rendered live (and kept, when it is the org-wide month and its rows were not changing).

    ``prices`` gives the pricing and its fingerprint.  Parameters and scope are checked first, as
    for any CSV: a refused request reads nothing kept."""
    fingerprints: list[str] = []

    def priced() -> PriceTable:
        table, fingerprint = prices()
        fingerprints.append(fingerprint)
        return table

    rows = usage_rows(request, scope, now, repository, pages, priced, cost_center_of=cost_center_of)
    month = kept_month(rows.query, scope) if kept is not None else None
    if kept is None or month is None:
        return CsvReport(rows.query, render(rows), kept=False)
    generation = kept.generation(month)
    if generation is None:  # the month's rows are being written: what is read now is not kept
        return CsvReport(rows.query, render(rows), kept=False)
    inputs = hashlib.sha256("\n".join([REPORT, month, generation, fingerprints[0], rows.currency,
                                       code_identity()]).encode("utf-8")).hexdigest()
    served = kept.read(REPORT, month, inputs)
    if served is not None:
        return CsvReport(rows.query, served, kept=True)
    return CsvReport(rows.query, _kept_as_sent(render(rows), kept.writer(REPORT, month, inputs), month), kept=False)


def _kept_as_sent(chunks: Iterator[str], writer: KeptReportWriter, month: str) -> Iterator[str]:
    """``chunks``, each also handed to ``writer``; once the last was sent, the report is kept.  A
    report that stops part way is not kept; failing to keep one never fails the response."""
    for chunk in chunks:
        writer.add(chunk)
        yield chunk
    try:
        writer.commit()
    except Exception:
        log.warning("the %s report of %s could not be kept; it is rendered live until it is", REPORT, month,
                    exc_info=True)


def keep_months(months: Iterable[datetime], now: datetime, repository: UsageRepository, pages: UsagePages,
                prices: Callable[[], tuple[PriceTable, str]], render: Callable[[UsageRows], Iterator[str]],
                kept: MonthReportStore) -> list[str]:
    """Render and keep the org-wide month report of each month not kept as it is now (after the
    rollup wrote them: finance's first read is then served as kept).  Returns the months rendered."""
    rendered = []
    for month in sorted({month_start(moment) for moment in months}):
        last_day = next_month(month) - timedelta(days=1)
        request = UsageRequest(start=f"{month:%Y-%m-%d}", end=f"{last_day:%Y-%m-%d}", granularity="month")
        report = usage_csv(request, Scope.unrestricted(admin=True), now, repository, pages, prices, render,
                           kept=kept)
        if report.kept:
            continue
        for _ in report.chunks:  # rendering it keeps it (when its rows were not being written)
            pass
        rendered.append(f"{month:%Y-%m}")
    return rendered
