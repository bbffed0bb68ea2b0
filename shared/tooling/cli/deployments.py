"""``chargeback deployments sync|set|list``: the deployment catalog costs are computed from.

Registered into the ``chargeback`` parser by :mod:`shared.tooling.cli`.  ``sync`` reads the accounts
of AOAI_ACCOUNT_IDS through ARM with the app's credential (managed identity in Azure, developer
credentials elsewhere); ``set`` records a version by hand, effective from ``--from`` (default: now).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from shared.errors import ChargebackError, InvalidRequestError
from shared.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    deployments = sub.add_parser("deployments", help="the deployment catalog (model, SKU, region, PTUs over time)")
    deployments.set_defaults(run=_deployments)
    commands = deployments.add_subparsers(dest="deployments_command", required=True)
    commands.add_parser("sync", help="read the deployments of the AOAI_ACCOUNT_IDS accounts from ARM")
    dset = commands.add_parser("set", help="record a deployment version by hand")
    dset.add_argument("name", help="the deployment name as the logs spell it")
    dset.add_argument("--model", required=True, help="e.g. gpt-4o")
    dset.add_argument("--version", required=True, help="model version, YYYY-MM-DD (e.g. 2024-08-06)")
    dset.add_argument("--sku", required=True, help="GlobalStandard, DataZoneStandard, Standard, GlobalBatch, "
                                                   "DataZoneBatch, GlobalProvisionedManaged, ...")
    dset.add_argument("--region", required=True, help="ARM region, e.g. eastus2")
    dset.add_argument("--ptu", type=int, help="PTUs of a provisioned SKU")
    dset.add_argument("--from", dest="effective_from", help="effective from (UTC date or datetime; default: now)")
    dset.add_argument("--account", help="Azure OpenAI account resource id (default: manual)")
    dlist = commands.add_parser("list", help="the version of every deployment now in force")
    dlist.add_argument("name", nargs="?", help="one deployment's whole history")


def _deployments(args: argparse.Namespace, settings: Settings) -> int:
    from shared.composition import deployment_store, deployment_sync_service
    from shared.core.deployments import DeploymentCatalog
    from shared.services.pricing_admin import deployment_json, manual_deployment, set_deployment

    if args.deployments_command == "sync":
        accounts = settings.aoai_account_ids
        if not accounts:
            raise InvalidRequestError("AOAI_ACCOUNT_IDS", "is empty: name the Azure OpenAI accounts to read")
        report = deployment_sync_service(settings).sync(accounts)
        for record in report.added:
            print(f"{'deleted' if record.deleted else 'version'}: {_line(deployment_json(record))}")
        for record in report.unknown_skus:
            print(f"unknown SKU (not costed): {record.name} {record.sku}")
        for name, owners in report.conflicts.items():
            print(f"not applied, listed by several accounts: {name} ({', '.join(owners)})")
        print(f"deployment sync: {len(report.added)} new version(s), {report.unchanged} unchanged, "
              f"{len(report.failed_accounts)} account(s) failed")
        if report.failed_accounts:
            raise ChargebackError("; ".join(f"{account}: {error}" for account, error in
                                            report.failed_accounts.items()))
        return 0
    store = deployment_store(settings)
    if args.deployments_command == "set":
        record = manual_deployment(args.name, args.model, args.version, args.sku, args.region, args.ptu,
                                   args.effective_from, datetime.now(UTC), args.account)
        changed = set_deployment(store, record)
        print(f"{'recorded' if changed else 'unchanged (already in force)'}: {_line(deployment_json(record))}")
        return 0
    records = store.history(args.name) if args.name else list(DeploymentCatalog(store.all()).latest())
    for record in records:
        print(_line(deployment_json(record)))
    if not records:
        print("no deployments in the catalog")
    return 0


def _line(fields: dict[str, object]) -> str:
    ptu = f" ptu={fields['ptu']}" if fields["ptu"] is not None else ""
    gone = " DELETED" if fields["deleted"] else ""
    return (f"{fields['name']}: {fields['model']} {fields['version']} {fields['sku']} {fields['region']}{ptu} "
            f"from {fields['effectiveFrom']} ({fields['source']}){gone}")
