"""Report API access grants in ``<prefix>access``.

PartitionKey = the principal (Entra object id or UPN, lower case, key-encoded), RowKey ``grant``;
properties ``Principal``, ``Role`` (``admin`` or ``reader``) and ``Subscriptions`` (comma-separated).
A caller's lookup is one point read per candidate name (object id, then UPN): never a scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from shared.adapters.table_access import TableAccess
from shared.core.access import ADMIN, READER, Grant
from shared.core.keys import partition_key
from shared.errors import NotFoundError

ACCESS = "access"
ROW = "grant"


def grant_entity(grant: Grant, now: datetime) -> dict[str, Any]:
    return {"PartitionKey": partition_key(grant.principal), "RowKey": ROW, "Principal": grant.principal,
            "Role": grant.role, "Subscriptions": ",".join(sorted(grant.subscriptions)), "UpdatedAt": now}


def grant_from(entity: Any) -> Grant:
    subscriptions = frozenset(s.strip() for s in str(entity.get("Subscriptions") or "").split(",") if s.strip())
    role = str(entity.get("Role") or READER).strip().lower()
    return Grant(str(entity.get("Principal") or entity["PartitionKey"]).lower(), ADMIN if role == ADMIN else READER,
                 subscriptions)


class AccessTableStore:
    def __init__(self, access: TableAccess) -> None:
        self._access = access

    def get(self, principal: str) -> Grant | None:
        table = self._access.table(ACCESS)
        try:
            entity = self._access.call(lambda: table.get_entity(partition_key(principal), ROW))
        except NotFoundError:
            return None
        if str(entity.get("Principal") or "").lower() != principal.lower():
            return None  # the key answers for its own principal only (shared.core.keys)
        return grant_from(entity)

    def lookup(self, principals: Iterable[str]) -> list[Grant]:
        return [grant for name in dict.fromkeys(principals) if (grant := self.get(name)) is not None]

    def put(self, grant: Grant) -> None:
        from azure.data.tables import UpdateMode

        table = self._access.table(ACCESS)
        entity = grant_entity(grant, datetime.now(UTC))
        self._access.call(lambda: table.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def delete(self, principal: str) -> bool:
        if self.get(principal) is None:
            return False
        table = self._access.table(ACCESS)
        self._access.call(lambda: table.delete_entity(partition_key(principal), ROW))
        return True

    def all(self) -> list[Grant]:
        """Every grant (the admin listing; the access table is small)."""
        table = self._access.table(ACCESS)
        entities = self._access.call(lambda: list(table.list_entities()))
        return sorted((grant_from(e) for e in entities), key=lambda g: g.principal)
