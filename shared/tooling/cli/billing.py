"""``chargeback report chargeback|quota|prices|alerts``: cost, quotas and alerts from the command line.

Registered into the ``chargeback`` parser by :mod:`shared.tooling.cli`.  Bad input raises
``InvalidRequestError`` naming the field, which ``chargeback`` turns into exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime

from shared.core.alerting import STATUSES
from shared.core.months import parse_month
from shared.core.pricing import Price, PriceFileError, price_from
from shared.core.quotas import check_subscription_id, make_quota, parse_period, quota_json
from shared.core.rate_overrides import RATE_KINDS, rate_unit
from shared.errors import InvalidRequestError
from shared.settings import Settings
from shared.tooling.cli import focus
from shared.tooling.cli.present import alert_lines, chargeback_text, price_lines, quota_lines


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    report = sub.add_parser("report", help="cost reports")
    report.set_defaults(run=_chargeback)
    report_sub = report.add_subparsers(dest="report_command", required=True)
    charge = report_sub.add_parser("chargeback", help="one line per subscription for a month, with cost")
    charge.add_argument("--month", help="YYYY-MM (default: the current month, UTC)")
    charge.add_argument("--csv", action="store_true", help="CSV with exact (unrounded) costs")
    focus.register_report(report_sub)

    quota = sub.add_parser("quota", help="token/cost quotas per subscription (* = default)")
    quota.set_defaults(run=_quota)
    quota_sub = quota.add_subparsers(dest="quota_command", required=True)
    qset = quota_sub.add_parser("set", help="create or replace the quota of a subscription for a period")
    qset.add_argument("subscription", help="APIM subscription id, or * for the default quota")
    qset.add_argument("--period", required=True, help="day or month (UTC)")
    qset.add_argument("--tokens", help="token limit for the period")
    qset.add_argument("--cost", help="cost limit for the period, in the price table's currency (e.g. 250.00)")
    qlist = quota_sub.add_parser("list", help="list quotas")
    qlist.add_argument("subscription", nargs="?", help="only this subscription")
    qdel = quota_sub.add_parser("delete", help="delete a subscription's quota(s)")
    qdel.add_argument("subscription", help="APIM subscription id, or * for the default quota")
    qdel.add_argument("--period", help="day or month (default: both)")

    prices = sub.add_parser("prices", help="the price table (file + operator overrides in Table Storage)")
    prices.set_defaults(run=_prices)
    prices_sub = prices.add_subparsers(dest="prices_command", required=True)
    prices_sub.add_parser("list", help="the effective price table")
    pset = prices_sub.add_parser("set", help="add or replace an override price (per 1M tokens)")
    pset.add_argument("model", help="model name as the logs report it (e.g. gpt-4o-2024-08-06)")
    pset.add_argument("--from", dest="effective_from", required=True, help="effective date, YYYY-MM-DD (UTC)")
    pset.add_argument("--input", required=True, help="price of 1M input (prompt) tokens")
    pset.add_argument("--cached-input", required=True, help="price of 1M cached input tokens")
    pset.add_argument("--output", required=True, help="price of 1M output (completion) tokens")
    pdel = prices_sub.add_parser("delete", help="delete an override price")
    pdel.add_argument("model", help="model name of the override price")
    pdel.add_argument("--from", dest="effective_from", required=True, help="its effective date, YYYY-MM-DD")
    psync = prices_sub.add_parser("sync", help="merge Azure's Retail Prices feed into the stored meter book")
    psync.add_argument("--region", help="one ARM region (default: PRICE_SYNC_REGION, else every region)")
    psync.add_argument("--currency", help="ISO currency (default: PRICE_SYNC_CURRENCY)")
    psync.add_argument("--feed-url", help="Retail Prices endpoint (default: RETAIL_PRICES_URL)")
    override = prices_sub.add_parser("override", help="negotiated rates per meter family (EA/MCA)")
    override_sub = override.add_subparsers(dest="override_command", required=True)
    oset = override_sub.add_parser("set", help="a discount and/or explicit rates (per 1M tokens) from a date")
    oset.add_argument("--model", default="*", help="model as the catalog names it (gpt-4o), or * (default)")
    oset.add_argument("--type", dest="deployment_type", default="*", help="global, datazone, regional or * (default)")
    oset.add_argument("--from", dest="effective_from", required=True, help="effective date, YYYY-MM-DD (UTC)")
    oset.add_argument("--discount", help="percent off every retail price of the family, e.g. 12.5")
    for kind in RATE_KINDS:
        oset.add_argument(f"--{kind.replace('_', '-')}", dest=f"rate_{kind}",
                          help=f"{kind} price per {rate_unit(kind)}")
    oset.add_argument("--note", default="", help="e.g. the agreement it comes from")
    override_sub.add_parser("list", help="every negotiated rate")
    odel = override_sub.add_parser("delete", help="delete a negotiated rate")
    odel.add_argument("--model", default="*", help="the rate's model, or * (default)")
    odel.add_argument("--type", dest="deployment_type", default="*", help="the rate's deployment type, or * (default)")
    odel.add_argument("--from", dest="effective_from", required=True, help="its effective date, YYYY-MM-DD")

    alerts = sub.add_parser("alerts", help="quota alerts in the outbox")
    alerts.set_defaults(run=_alerts)
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    alist = alerts_sub.add_parser("list", help="list alerts, newest first")
    alist.add_argument("--subscription", help="only this APIM subscription id")
    alist.add_argument("--status", help="pending, sent or failed")
    alerts_sub.add_parser("run", help="evaluate quotas and deliver alerts now (no rollup)")


def _chargeback(args: argparse.Namespace, settings: Settings) -> int:
    from shared.composition import price_catalog, table_store
    from shared.services.costing import monthly_chargeback

    store = table_store(settings)
    month = parse_month(args.month, datetime.now(UTC))
    report = monthly_chargeback(store, price_catalog(settings, store).current, month)
    if args.csv:  # with the cost center, owner, business unit and name of each subscription, as the API's CSV
        from shared.api.finops_presenters import chargeback_csv as with_cost_centers
        from shared.composition import subscription_store
        from shared.core.cost_centers import SubscriptionDirectory

        sys.stdout.write(with_cost_centers(report, SubscriptionDirectory(subscription_store(settings, store).all())))
    else:
        print(chargeback_text(report))
    return 0


def _quota(args: argparse.Namespace, settings: Settings) -> int:
    from shared.composition import quota_store

    store = quota_store(settings)
    if args.quota_command == "set":
        quota = make_quota(args.subscription, args.period, args.tokens, args.cost)
        store.put(quota)
        print(f"quota set: {json.dumps(quota_json(quota))}")
        return 0
    if args.quota_command == "list":
        quotas = store.for_subscription(check_subscription_id(args.subscription)) if args.subscription \
            else store.all()
        for line in quota_lines(quotas):
            print(line)
        if not quotas:
            print("no quotas")
        return 0
    period = parse_period(args.period) if args.period else None
    removed = store.delete(check_subscription_id(args.subscription), period)
    print(f"deleted {removed} quota(s)")
    return 0


def _prices(args: argparse.Namespace, settings: Settings) -> int:
    from shared.composition import price_catalog, price_overrides

    if args.prices_command == "sync":
        return _price_sync(args, settings)
    if args.prices_command == "override":
        return _override(args, settings)
    if args.prices_command == "list":
        for line in price_lines(price_catalog(settings).current()):
            print(line)
        return 0
    effective = _date(args.effective_from)
    if args.prices_command == "set":
        try:
            price: Price = price_from("price", {"model": args.model, "effectiveFrom": effective.isoformat(),
                                                "input": args.input, "cachedInput": args.cached_input,
                                                "output": args.output})
        except PriceFileError as exc:
            raise InvalidRequestError("price", str(exc)) from None
        currency = price_catalog(settings).file_table().currency
        price_overrides(settings).put_price(price, currency)
        print(f"price set for {price.model} from {effective}: input {price.input}, cached {price.cached_input}, "
              f"output {price.output} {currency} per 1M tokens")
        return 0
    found = price_overrides(settings).delete_price(args.model, effective)
    print("deleted" if found else "no such override price")
    return 0 if found else 1


def _price_sync(args: argparse.Namespace, settings: Settings) -> int:
    from shared.composition import meter_price_store, retail_prices_client
    from shared.services.price_sync import sync_prices

    region = args.region or settings.price_sync_region
    currency = (args.currency or settings.price_sync_currency).strip().upper()
    try:
        client = retail_prices_client(settings, args.feed_url)
        result = sync_prices(client, meter_price_store(settings), region, currency, datetime.now(UTC))
    except ValueError as exc:  # a malformed region, currency or URL, named by the client
        raise InvalidRequestError("prices sync", str(exc)) from None
    for failure in result.failures:
        print(f"not parsed (not priced): {failure.meter_id} {failure.meter_name!r}: {failure.reason}")
    for conflict in result.conflicts:
        kept = conflict.kept
        print(f"restated price kept as stored: {kept.key.text()} from {kept.effective_start:%Y-%m-%d}")
    print(f"price sync ({region or 'every region'}, {currency}): {result.added} new price row(s), {result.unchanged} "
          f"unchanged, {len(result.failures)} unparsed, {result.skipped} other items; generation {result.generation}")
    return 0


def _override(args: argparse.Namespace, settings: Settings) -> int:
    from shared.composition import rate_overrides
    from shared.core.rate_overrides import RateOverrideError, make_override, override_json

    store = rate_overrides(settings)
    if args.override_command == "list":
        overrides = store.list_overrides()
        for entry in overrides:
            print(json.dumps(override_json(entry)))
        if not overrides:
            print("no negotiated rates")
        return 0
    if args.override_command == "delete":
        found = store.delete_override(args.model.strip().lower(), args.deployment_type.strip().lower(),
                                      _date(args.effective_from))
        print("deleted" if found else "no such negotiated rate")
        return 0 if found else 1
    rates = {kind: getattr(args, f"rate_{kind}") for kind in RATE_KINDS if getattr(args, f"rate_{kind}") is not None}
    try:
        entry = make_override(args.model, args.deployment_type, args.effective_from, args.discount, rates, args.note)
    except RateOverrideError as exc:
        raise InvalidRequestError("override", str(exc)) from None
    store.put_override(entry)
    print(f"negotiated rate set: {json.dumps(override_json(entry))}")
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequestError("--from", f"expected YYYY-MM-DD, got {text!r}") from None


def _alerts(args: argparse.Namespace, settings: Settings) -> int:
    from shared.composition import alert_outbox, alert_service

    if args.alerts_command == "run":
        result = alert_service(settings).run()
        print(result.summary())
        result.raise_for_errors()
        return 0
    if args.status and args.status not in STATUSES:
        raise InvalidRequestError("--status", f"must be one of {', '.join(STATUSES)}, got {args.status!r}")
    subscription = check_subscription_id(args.subscription, "--subscription") if args.subscription else None
    entries = alert_outbox(settings).list_alerts(subscription, args.status, 1000)
    for line in alert_lines(entries):
        print(line)
    if not entries:
        print("no alerts", file=sys.stderr)
    return 0
