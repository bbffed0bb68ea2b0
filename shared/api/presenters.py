"""How the API writes what the services return: JSON documents and CSV text.

Field names are camelCase; moments are ISO text with ``Z``; money is exact decimal text (never a
float, never rounded).  CSV carries the same columns as the JSON rows, with cells a spreadsheet
would run as a formula defused, by :mod:`shared.core.csv_cells` (:func:`csv_text`, also used by the
command line; the usage CSV streamed by :func:`usage_csv`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache, lru_cache
from operator import attrgetter

from shared.core.access import Scope
from shared.core.alerting import alert_document
from shared.core.costing_rules import Pricing
from shared.core.csv_cells import csv_lines, csv_rows, quoted_csv, text_cell
from shared.core.meters import meter_price_record
from shared.core.moments import iso
from shared.core.pricing import ZERO, Cost, PriceTable, money_text
from shared.core.quotas import Quota, quota_json
from shared.core.rate_overrides import override_json
from shared.core.usage import COUNTER_NAMES, Counters, UsageRow, total
from shared.errors import InvalidRequestError
from shared.ports import OutboxEntry
from shared.services.costing import Chargeback
from shared.services.month_csv import CsvReport
from shared.services.quota_views import QuotaView
from shared.services.report import ReportRow, UsageQuery, grouped_fields
from shared.services.summary import QuotaUse, SubscriptionSummary, Usage
from shared.services.usage_report import Totals, UsageReport, UsageRows

# groupBy field -> its JSON / CSV column
FIELD_COLUMNS = {"subscription": "subscriptionId", "product": "productId", "model": "model",
                 "deployment": "deployment", "costCenter": "costCenter", "apimService": "apimService",
                 "serviceTier": "serviceTier"}


# -- shared pieces ----------------------------------------------------------------------------------
def wants_csv(format: str) -> bool:
    """The ``format`` parameter of a report: ``json`` or ``csv`` (anything else is a 400)."""
    if format not in ("json", "csv"):
        raise InvalidRequestError("format", f"must be json or csv, got {format!r}")
    return format == "csv"


def csv_text(columns: Sequence[str], records: Iterable[Mapping[str, object]]) -> str:
    """A header and one line per record, every field quoted, formula-like text defused
    (:mod:`shared.core.csv_cells`); plain numbers stay numbers."""
    return quoted_csv(columns, records)


def csv_chunks(columns: Sequence[str], records: Iterable[Mapping[str, object]]) -> Iterator[str]:
    """:func:`csv_text` in pieces, written as the records come (a streamed response)."""
    return csv_lines(columns, records)


def attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


@cache  # a few dozen field names, asked for every row of a report
def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def counters_json(counters: Counters) -> dict[str, object]:
    return {camel(name): value for name, value in counters.as_dict().items()}


def cost_fields(cost: Cost, currency: str) -> dict[str, object]:
    return {"cost": _money(cost.amount), "currency": currency, "unpricedTokens": cost.unpriced_tokens,
            **cost_split(cost)}


# The cost split: one column per meter kind, deployment type and cost basis (each sums to ``cost``).
SPLIT_KINDS = {"costInput": ("input",), "costCachedInput": ("cached_input",), "costOutput": ("output",),
               "costAudio": ("audio_input", "cached_audio_input", "audio_output"), "costCacheWrite": ("cache_write",),
               "costPtu": ("ptu_hour",)}
SPLIT_TYPES = {"costGlobal": "global", "costDataZone": "datazone", "costRegional": "regional",
               "costUncatalogued": "uncatalogued"}
SPLIT_BASES = {"costPayg": "payg", "costBatch": "batch", "costPtuAllocated": "ptu-allocated",
               "costOverride": "override"}
SPLIT_COLUMNS = (*SPLIT_KINDS, *SPLIT_TYPES, *SPLIT_BASES, "costBasis", "listCost", "priceAsOf", "uncatalogued",
                 "unpricedMeters")


def cost_split(cost: Cost) -> dict[str, object]:
    """The split as flat fields (JSON and CSV alike): exact decimal text per column, ``costBasis`` the
    bases present (``;``-joined), ``uncatalogued`` the deployments priced by model name."""
    def total(values: Mapping[str, Decimal], keys: Iterable[str]) -> str:
        # most columns of most rows have none of their keys: the zero text, without a sum
        if not any(key in values for key in keys):
            return _ZERO_MONEY
        return _money(sum((values.get(key, ZERO) for key in keys), ZERO))

    fields: dict[str, object] = {column: total(cost.by_kind, kinds) for column, kinds in SPLIT_KINDS.items()}
    fields.update({column: total(cost.by_deployment_type, (kind,)) for column, kind in SPLIT_TYPES.items()})
    fields.update({column: total(cost.by_basis, (basis,)) for column, basis in SPLIT_BASES.items()})
    fields["costBasis"] = ";".join(basis for basis in SPLIT_BASES.values() if cost.by_basis.get(basis))
    fields["listCost"] = _money(cost.list_amount)
    fields["priceAsOf"] = cost.price_as_of.isoformat() if cost.price_as_of else None
    fields["uncatalogued"] = sorted(cost.uncatalogued)
    fields["unpricedMeters"] = sorted(cost.unpriced_meters)
    return fields


def _cells(record: Mapping[str, object]) -> dict[str, object]:
    """A JSON record as CSV cells: lists joined with ``;``."""
    return {key: ";".join(str(v) for v in value) if isinstance(value, list) else value
            for key, value in record.items()}


# -- GET /api/usage -----------------------------------------------------------------------------------
def _grouped_row(row: ReportRow, group_by: Sequence[str], currency: str) -> dict[str, object]:
    return {
        "periodStart": iso(row.period_start),
        **{FIELD_COLUMNS[name]: value for name, value in zip(grouped_fields(group_by), row.values, strict=True)},
        **counters_json(row.counters),
        **cost_fields(row.cost, currency),
    }


def usage_totals(totals: Totals, currency: str) -> dict[str, object]:
    """The ``totals`` of a report (the first page renders them; the token carries them on)."""
    cost = totals.cost
    return {**counters_json(totals.counters), **cost_fields(cost, currency),
            "unpricedModels": sorted(cost.unpriced_models)}


def usage_json(report: UsageReport) -> dict[str, object]:
    """One page of rows; ``totals`` and ``rowCount`` cover the whole result (computed by the first page)."""
    query = report.query
    return {
        "from": iso(query.start),
        "to": iso(query.end),
        "granularity": query.granularity.value,
        "subscriptions": list(query.subscriptions),
        "filters": {"product": list(query.products), "model": list(query.models),
                    "deployment": list(query.deployments), "apimService": list(query.apim_services)},
        "groupBy": list(query.group_by),
        "rows": [_grouped_row(row, query.group_by, report.currency) for row in report.page],
        "totals": dict(report.totals),
        "rowCount": report.row_count,
        "pageSize": report.page_size,
        "next": report.next_token,
    }


def usage_csv(report: UsageRows) -> Iterator[str]:
    """Every row (CSV is never paged): period, the grouped key columns, counters, cost (and the APIM
    service, then the service tier, last when they come with the subscription and the deployment: the
    columns before them keep their places)."""
    query = report.query
    implied = [FIELD_COLUMNS[name] for name in grouped_fields(query.group_by) if name not in query.group_by]
    columns = ["periodStart", *(FIELD_COLUMNS[name] for name in query.group_by),
               *(camel(name) for name in COUNTER_NAMES), "cost", "currency", "unpricedTokens", *SPLIT_COLUMNS,
               *implied]
    return csv_rows(columns, _usage_csv_rows(report.rows, len(query.group_by), report.currency))


_ZERO_MONEY = money_text(ZERO)
_COUNTERS = attrgetter(*COUNTER_NAMES)


@lru_cache(maxsize=4096)  # a row repeats its amount in several columns (cost, list cost, its type, its basis)
def _money(amount: Decimal) -> str:
    return money_text(amount)  # equal amounts have one text (normalized): caching by value is exact


def _split_maker(split: Mapping[str, tuple[str, ...]]) -> Callable[[Mapping[str, Decimal]], list[str]]:
    """The cells of one part of :func:`cost_split` (columns in ``split``'s order): the same sum per
    column, so the same text, computed only for the columns a key of the cost falls in (most
    columns of most rows are zero)."""
    keys_of = tuple(split.values())
    column_of = {key: index for index, keys in enumerate(keys_of) for key in keys}
    zeros = [_ZERO_MONEY] * len(keys_of)

    def cells(values: Mapping[str, Decimal]) -> list[str]:
        out = zeros.copy()
        for key, amount in values.items():
            column = column_of.get(key)
            if column is not None:
                keys = keys_of[column]  # the same sum as cost_split's, so the same text
                summed = ZERO + amount if len(keys) == 1 else sum((values.get(k, ZERO) for k in keys), ZERO)
                out[column] = _money(summed)
        return out

    return cells


_KIND_CELLS = _split_maker(SPLIT_KINDS)
_TYPE_CELLS = _split_maker({column: (kind,) for column, kind in SPLIT_TYPES.items()})
_BASIS_CELLS = _split_maker({column: (basis,) for column, basis in SPLIT_BASES.items()})


def _usage_csv_rows(rows: Iterable[ReportRow], keyed: int, currency: str) -> Iterator[list[str]]:
    """The cells of :func:`usage_csv`, column by column: exactly what ``csv_chunks`` makes of
    :func:`_grouped_row` (the same texts through the same cell rules), without building a record
    per row — the all-subscription month CSV writes tens of thousands of rows.  ``keyed``: the
    grouped values written after the period; the others (implied by them) go last."""
    currency_cell = text_cell(currency)
    periods: dict[datetime, str] = {}
    for row in rows:
        period = periods.get(row.period_start)
        if period is None:
            period = periods[row.period_start] = text_cell(iso(row.period_start))
        cost = row.cost
        by_basis = cost.by_basis
        values = row.values
        yield [
            period, *map(text_cell, values[:keyed]), *map(str, _COUNTERS(row.counters)),
            _money(cost.amount), currency_cell, str(cost.unpriced_tokens),
            *_KIND_CELLS(cost.by_kind), *_TYPE_CELLS(cost.by_deployment_type), *_BASIS_CELLS(by_basis),
            text_cell(";".join(basis for basis in SPLIT_BASES.values() if by_basis.get(basis))),
            _money(cost.list_amount),
            text_cell(cost.price_as_of.isoformat()) if cost.price_as_of else "",
            text_cell(";".join(sorted(cost.uncatalogued))),
            text_cell(";".join(sorted(cost.unpriced_meters))),
            *map(text_cell, values[keyed:]),
        ]


def usage_csv_filename(report: UsageReport | UsageRows | CsvReport) -> str:
    query = report.query
    return f"usage-{query.start:%Y%m%d}-{query.end:%Y%m%d}-{query.granularity.value}.csv"


def report_json(query: UsageQuery, rows: Sequence[UsageRow]) -> dict[str, object]:
    """Stored rows as they are, without cost or grouping (the rollup's checks read it)."""
    return {
        "from": iso(query.start),
        "to": iso(query.end),
        "granularity": query.granularity.value,
        "subscriptions": list(query.subscriptions),
        "rows": [{"periodStart": iso(row.period_start), "subscriptionId": row.key.subscription_id,
                  "productId": row.key.product_id, "model": row.key.model, "deployment": row.key.deployment,
                  "apimService": row.key.apim_service, "serviceTier": row.key.service_tier,
                  **counters_json(row.counters)} for row in rows],
        "totals": counters_json(total(list(rows))),
    }


# -- GET /api/usage/{subscription}/summary ------------------------------------------------------------
def _usage(counters: Counters) -> dict[str, int]:
    return {"requests": counters.requests, "promptTokens": counters.prompt_tokens,
            "cachedTokens": counters.cached_tokens, "completionTokens": counters.completion_tokens,
            "totalTokens": counters.total_tokens, "errorRequests": counters.error_requests,
            "unmeteredRequests": counters.unmetered_requests}


def _usage_cost(usage: Usage, currency: str) -> dict[str, object]:
    return {**_usage(usage.counters), **cost_fields(usage.cost, currency)}


def _quota_use(use: QuotaUse | None) -> dict[str, object] | None:
    if use is None:
        return None
    return {
        **quota_json(use.quota),
        "source": "default" if use.inherited else "own",
        "periodStart": iso(use.period_start),
        "usedTokens": use.used_tokens,
        "usedCost": money_text(use.used_cost.amount),
        "usedPercent": float(use.used_percent),
        "thresholdsReached": use.thresholds_reached,
        "projectedPercent": None if use.projected_percent is None else float(use.projected_percent),
    }


def summary_json(summary: SubscriptionSummary) -> dict[str, object]:
    totals, currency = summary.totals, summary.currency
    return {
        "subscriptionId": summary.subscription_id,
        "month": summary.month.strftime("%Y-%m"),
        "currency": currency,
        "totals": {**_usage_cost(totals, currency), "unpricedModels": sorted(totals.cost.unpriced_models)},
        "unmetered": {"requests": totals.counters.unmetered_requests, "streamed": totals.counters.unmetered_streamed,
                      "truncated": totals.counters.unmetered_truncated},
        "quota": {"month": _quota_use(summary.month_quota), "day": _quota_use(summary.day_quota)},
        "thresholds": list(summary.thresholds),
        "topModels": [{"model": name, **_usage_cost(usage, currency)} for name, usage in summary.top_models],
        "days": [{"day": day.date().isoformat(), **_usage_cost(usage, currency)} for day, usage in summary.days],
    }


# -- GET /api/chargeback, /api/prices -----------------------------------------------------------------
# apimService last: the columns before it keep their places for readers that go by position.
CHARGEBACK_COLUMNS = ("month", "subscriptionId", "requests", "promptTokens", "cachedTokens", "completionTokens",
                      "totalTokens", "errorRequests", "unmeteredRequests", "cost", "currency", "unpricedTokens",
                      "unpricedModels", "deployment", *SPLIT_COLUMNS, "apimService")
# The service tier of a line ("priority": usage served at priority, priced by the Priority meters): the last
# column of every chargeback CSV, after any columns a route adds, so no earlier column moves.
TIER_COLUMN = "serviceTier"


def _chargeback_line(subscription_id: str, counters: Counters, cost: Cost, currency: str,
                     deployment: str = "", apim_service: str = "", service_tier: str = "") -> dict[str, object]:
    return {"subscriptionId": subscription_id, **_usage(counters), **cost_fields(cost, currency),
            "unpricedModels": sorted(cost.unpriced_models), "deployment": deployment, "apimService": apim_service,
            TIER_COLUMN: service_tier}


def chargeback_json(report: Chargeback) -> dict[str, object]:
    """Subscriptions' lines, then one ``unallocated-capacity`` line per provisioned deployment with
    idle hours (its ``deployment`` named); ``priceAsOf``: the oldest price list the costs used."""
    currency = report.currency
    return {
        "month": report.month.strftime("%Y-%m"),
        "currency": currency,
        "priceSource": report.price_source,
        "priceAsOf": report.price_as_of.isoformat() if report.price_as_of else None,
        "ptuIdleCost": report.idle,
        "subscriptions": [_chargeback_line(ln.subscription_id, ln.counters, ln.cost, currency, ln.deployment,
                                           ln.apim_service, ln.service_tier) for ln in report.lines],
        "totals": _chargeback_line("*", report.total_counters, report.total_cost, currency),
    }


def chargeback_csv(report: Chargeback) -> str:
    """One line per subscription (and per deployment's idle capacity); costs exact (unrounded), lists
    (unpriced models, uncatalogued deployments) joined with ``;``."""
    month = report.month.strftime("%Y-%m")
    return csv_text((*CHARGEBACK_COLUMNS, TIER_COLUMN), (
        _cells({"month": month, **_chargeback_line(ln.subscription_id, ln.counters, ln.cost, report.currency,
                                                   ln.deployment, ln.apim_service, ln.service_tier)})
        for ln in report.lines))


def chargeback_csv_filename(report: Chargeback) -> str:
    return f"chargeback-{report.month:%Y-%m}.csv"


def prices_json(table: PriceTable) -> dict[str, object]:
    return {
        "currency": table.currency,
        "unit": "per 1M tokens",
        "source": table.source,
        "prices": [{"model": p.model, "effectiveFrom": p.effective_from.isoformat(), "input": money_text(p.input),
                    "cachedInput": money_text(p.cached_input), "output": money_text(p.output)}
                   for p in sorted(table.prices, key=lambda p: (p.model.lower(), p.effective_from))],
        "prefixRules": [{"prefix": r.prefix, "model": r.model} for r in table.prefix_rules],
        "asOf": table.as_of.isoformat() if table.as_of else None,
        **(_meter_prices(table) if isinstance(table, Pricing) else {}),
    }


def _meter_prices(pricing: Pricing) -> dict[str, object]:
    """The retail meter book (feed over the shipped file), negotiated rates and the PTU idle rule."""
    return {
        "meters": {"asOf": pricing.meters_as_of.isoformat() if pricing.meters_as_of else None,
                   "rows": [meter_price_record(row) for row in pricing.meters.rows] if pricing.meters else []},
        "rateOverrides": [override_json(o) for o in pricing.overrides.all()],
        "ptuIdleCost": pricing.ptu.idle,
    }


# -- quotas, alerts, access ---------------------------------------------------------------------------
def quotas_json(quotas: Sequence[Quota]) -> dict[str, object]:
    return {"quotas": [quota_json(q) for q in quotas]}


def quota_view_json(view: QuotaView) -> dict[str, object]:
    effective = {period.value: None if chosen is None else {**quota_json(chosen[0]),
                                                            "source": "own" if chosen[1] else "default"}
                 for period, chosen in view.effective.items()}
    return {"subscriptionId": view.subscription_id, "quotas": [quota_json(q) for q in view.own],
            "effective": effective}


def alert_json(entry: OutboxEntry) -> dict[str, object]:
    document = alert_document(entry.alert)
    for internal in ("type", "version"):
        document.pop(internal)
    return {**document, "status": entry.status, "attempts": entry.attempts, "lastError": entry.last_error,
            "deliveredChannels": sorted(entry.delivered), "createdAt": iso(entry.created_at),
            "sentAt": iso(entry.sent_at)}


def scope_json(scope: Scope) -> dict[str, object]:
    return {"caller": scope.caller, "admin": scope.admin, "allSubscriptions": not scope.restricted,
            "subscriptions": None if scope.subscriptions is None else sorted(scope.subscriptions)}
