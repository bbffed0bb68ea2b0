"""``chargeback access grant|revoke|list``: who may see which subscriptions through the report API.

Grants live in ``<prefix>access`` (see :mod:`shared.core.access`); they only matter when App
Service Authentication fronts the app and ``TRUST_APP_SERVICE_AUTH=true``.
"""

from __future__ import annotations

import argparse
import json

from shared.core.access import ADMIN, READER, Grant, grant_json, make_grant, normalize_principal, parse_subscriptions
from shared.errors import InvalidRequestError
from shared.settings import Settings
from shared.tooling.cli.present import grant_lines


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    access = sub.add_parser("access", help="report API access: principal -> subscriptions (or admin)")
    access.set_defaults(run=run)
    access_sub = access.add_subparsers(dest="access_command", required=True)
    grant = access_sub.add_parser("grant", help="let a principal (Entra object id or UPN) see subscriptions")
    grant.add_argument("principal", help="Entra object id or user principal name (UPN)")
    who = grant.add_mutually_exclusive_group(required=True)
    who.add_argument("--subscriptions", help="comma-separated APIM subscription ids (added to the existing ones)")
    who.add_argument("--admin", action="store_true", help="every subscription, and managing access")
    revoke = access_sub.add_parser("revoke", help="take subscriptions (or all access) away from a principal")
    revoke.add_argument("principal", help="Entra object id or user principal name (UPN)")
    revoke.add_argument("--subscriptions", help="only these (comma-separated); absent = the whole grant")
    access_sub.add_parser("list", help="list every grant")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from shared.composition import access_store

    store = access_store(settings)
    if args.access_command == "list":
        grants = store.all()
        for line in grant_lines(grants):
            print(line)
        if not grants:
            print("no grants")
        return 0
    principal = normalize_principal(args.principal)
    existing = store.get(principal)
    if args.access_command == "grant":
        if args.admin:
            updated = make_grant(principal, ADMIN, sorted(existing.subscriptions) if existing else None)
        else:
            added = parse_subscriptions(args.subscriptions, "--subscriptions")
            if not added:
                raise InvalidRequestError("--subscriptions", "give at least one subscription id")
            role = existing.role if existing else READER
            updated = make_grant(principal, role, sorted(added | (existing.subscriptions if existing else set())))
        store.put(updated)
        print(f"granted: {json.dumps(grant_json(updated))}")
        return 0
    if existing is None:
        print(f"{principal} has no grant")
        return 1
    if not args.subscriptions:
        store.delete(principal)
        print(f"revoked every access of {principal}")
        return 0
    remaining = existing.subscriptions - parse_subscriptions(args.subscriptions, "--subscriptions")
    if existing.role == READER and not remaining:
        store.delete(principal)
        print(f"revoked every access of {principal} (no subscription left)")
        return 0
    kept = Grant(principal, existing.role, frozenset(remaining))
    store.put(kept)
    print(f"revoked: {json.dumps(grant_json(kept))}")
    return 0
