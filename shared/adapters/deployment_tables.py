"""Deployment versions in Table Storage (``<prefix>deployments``), and an in-memory stand-in.

One row per version: PartitionKey = the lower-cased deployment name made safe for keys (so every
spelling of a name lands in one partition and its history is one range read), RowKey = the
version's ``effective_from`` as fixed-width UTC text (sorts in time order). The name as spelled,
the account and every term are stored as properties; nothing is decoded from a key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.adapters.entity_values import int64, plain, utc
from shared.adapters.table_access import TableAccess
from shared.core.deployments import Deployment, Source, name_key
from shared.core.keys import partition_key

DEPLOYMENTS = "deployments"


def version_key(moment: datetime) -> str:
    """``2026-11-25T13:45:12.000000Z``: fixed width, so text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def deployment_entity(record: Deployment) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": partition_key(name_key(record.name)),
        "RowKey": version_key(record.effective_from),
        "Name": record.name,
        "Account": record.account,
        "Model": record.model,
        "ModelVersion": record.model_version,
        "Sku": record.sku,
        "Region": record.region,
        "EffectiveFrom": record.effective_from,
        "Source": record.source.value,
        "Deleted": record.deleted,
    }
    if record.ptus is not None:
        entity["Ptus"] = int64(record.ptus)
    return entity


def deployment_from(entity: Any) -> Deployment:
    ptus = plain(entity.get("Ptus"))
    moment = utc(entity["EffectiveFrom"])
    assert moment is not None  # written by deployment_entity, always set
    return Deployment(name=str(entity["Name"]), account=str(entity["Account"]), model=str(entity["Model"]),
                      model_version=str(entity["ModelVersion"]), sku=str(entity["Sku"]),
                      region=str(entity["Region"]), ptus=None if ptus is None else int(ptus),
                      effective_from=moment, source=Source(str(entity["Source"])),
                      deleted=bool(plain(entity.get("Deleted"))))


def _order(record: Deployment) -> tuple[str, datetime]:
    return (record.key, record.effective_from)


class DeploymentTableStore:
    """Implements ``DeploymentRepository`` on Table Storage."""

    def __init__(self, access: TableAccess) -> None:
        self._access = access

    def add(self, record: Deployment) -> None:
        from azure.data.tables import UpdateMode

        table = self._access.table(DEPLOYMENTS)
        entity = deployment_entity(record)
        self._access.call(lambda: table.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def history(self, name: str) -> list[Deployment]:
        table = self._access.table(DEPLOYMENTS)
        parameters = {"pk": partition_key(name_key(name))}
        entities = self._access.call(lambda: list(table.query_entities("PartitionKey eq @pk",
                                                                       parameters=parameters)))
        return sorted((deployment_from(e) for e in entities), key=_order)

    def all(self) -> list[Deployment]:
        table = self._access.table(DEPLOYMENTS)
        entities = self._access.call(lambda: list(table.list_entities()))
        return sorted((deployment_from(e) for e in entities), key=_order)


class MemoryDeploymentStore:
    """Implements ``DeploymentRepository`` in memory (unit tests), keyed exactly like the table."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], Deployment] = {}

    def add(self, record: Deployment) -> None:
        self._rows[(partition_key(record.key), version_key(record.effective_from))] = record

    def history(self, name: str) -> list[Deployment]:
        return sorted((r for r in self._rows.values() if r.key == name_key(name)), key=_order)

    def all(self) -> list[Deployment]:
        return sorted(self._rows.values(), key=_order)
