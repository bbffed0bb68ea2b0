"""``chargeback subscriptions sync|set|list``: the APIM subscription directory (cost centers for finance).

Registered into the ``chargeback`` parser by :mod:`shared.tooling.cli`.  ``sync`` lists the
subscriptions of the APIM_RESOURCE_ID service through ARM with the app's credential (managed
identity in Azure, developer credentials elsewhere) and stores display name, owner, scope and
state; ``set`` records what a person owns (cost center, business unit, owner, tags), which no sync
ever overwrites.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from shared.core.cost_centers import SubscriptionInfo, SubscriptionInfoRepository
from shared.core.deployments import Source
from shared.errors import InvalidRequestError
from shared.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    subscriptions = sub.add_parser("subscriptions", help="APIM subscriptions: display name, owner, cost center, tags")
    subscriptions.set_defaults(run=_subscriptions)
    commands = subscriptions.add_subparsers(dest="subscriptions_command", required=True)
    commands.add_parser("sync", help="read the APIM_RESOURCE_ID service's subscriptions from ARM")
    sset = commands.add_parser("set", help="set a subscription's cost center, owner, business unit and/or tags")
    sset.add_argument("subscription", help="the APIM subscription id (as the gateway logs it)")
    sset.add_argument("--cost-center", help='the cost center ("" clears it: unassigned)')
    sset.add_argument("--business-unit", help='the business unit ("" clears it)')
    sset.add_argument("--owner", help='a readable owner, winning over ARM\'s ("" drops it)')
    sset.add_argument("--tag", action="append", default=None, metavar="NAME=VALUE",
                      help="a tag (repeat for several); replaces every tag of the subscription")
    sset.add_argument("--clear-tags", action="store_true", help="remove every tag")
    slist = commands.add_parser("list", help="every subscription in the directory")
    slist.add_argument("--cost-center", help="only this cost center (unassigned: those without one)")
    slist.add_argument("--json", action="store_true", help="one JSON document per line")


def _subscriptions(args: argparse.Namespace, settings: Settings) -> int:
    from shared.composition import subscription_store, subscription_sync_service

    if args.subscriptions_command == "sync":
        report = subscription_sync_service(settings).sync(settings.apim_resource_id)
        for record in report.added:
            print(f"added: {_line(record)}")
        for record in report.updated:
            print(f"updated: {_line(record)}")
        for sid in report.not_listed:
            print(f"no longer listed by ARM (record kept): {sid}")
        print(f"subscription sync: {len(report.added)} added, {len(report.updated)} updated, "
              f"{report.unchanged} unchanged, {len(report.not_listed)} no longer listed")
        return 0
    store = subscription_store(settings)
    if args.subscriptions_command == "set":
        return _set(args, store)
    from shared.api.finops_presenters import subscription_json
    from shared.services.subscription_info import list_subscriptions

    records = list_subscriptions(store, cost_center=args.cost_center)
    for record in records:
        print(json.dumps(subscription_json(record)) if args.json else _line(record))
    if not records:
        print("no subscriptions in the directory (run `chargeback subscriptions sync`)")
    return 0


def _set(args: argparse.Namespace, store: SubscriptionInfoRepository) -> int:
    from shared.services.subscription_info import parse_tag_arguments, set_subscription_info

    if args.tag is not None and args.clear_tags:
        raise InvalidRequestError("--clear-tags", "give --tag or --clear-tags, not both")
    tags = {} if args.clear_tags else (parse_tag_arguments(args.tag) if args.tag is not None else None)
    record = set_subscription_info(store, args.subscription, cost_center=args.cost_center,
                                   business_unit=args.business_unit, owner=args.owner, tags=tags,
                                   now=datetime.now(UTC))
    print(f"set: {_line(record)}")
    if record.source is Source.MANUAL:
        print(f"note: {record.subscription_id!r} has not been listed by ARM (yet): check the id "
              "(`chargeback subscriptions sync` lists them)")
    return 0


def _line(record: SubscriptionInfo) -> str:
    tags = ",".join(f"{k}={v}" for k, v in sorted(record.tags.items()))
    parts = [record.subscription_id, f"cost-center={record.effective_cost_center}",
             f"owner={record.owner or '-'}", f"name={record.display_name or '-'}"]
    if record.business_unit:
        parts.append(f"business-unit={record.business_unit}")
    if tags:
        parts.append(f"tags={tags}")
    if record.state:
        parts.append(f"state={record.state}")
    return "  ".join(parts)
