"""Shared Table Storage access for the feature stores (quotas, prices, alert outbox, enforcement).

They reuse the account connection and the SDK-error mapping of :class:`TableStore` (one client
per process, the same ``StorageError`` family), so a feature table fails exactly like the usage
table does.  Every filter is parameterized; no value is formatted into filter text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from shared.adapters.tables import TableStore
from shared.errors import StorageError

T = TypeVar("T")


class TableAccess:
    def __init__(self, store: TableStore, prefix: str) -> None:
        self._store = store
        self.prefix = prefix

    def table(self, suffix: str) -> Any:
        """The client of ``<prefix><suffix>``, created on first use."""
        return self._store.table(f"{self.prefix}{suffix}")

    def call(self, operation: Callable[[], T]) -> T:
        return self._store.call(operation)


def caused_by(exc: StorageError, name: str) -> bool:
    """Whether the SDK exception behind ``exc`` is ``azure.core.exceptions.<name>``."""
    from azure.core import exceptions

    kind = getattr(exceptions, name)
    return isinstance(exc.__cause__, kind)


def plain(value: Any) -> Any:
    return getattr(value, "value", value)  # Int64 values come back wrapped in EntityProperty


def utc(value: Any) -> datetime | None:
    if value is None:
        return None
    moment: datetime = plain(value)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def int64(value: int) -> Any:
    from azure.data.tables import EdmType, EntityProperty

    return EntityProperty(value, EdmType.INT64)


def decimal_or_none(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(plain(value)))


def without_metadata(entity: Any) -> dict[str, Any]:
    return {key: plain(value) for key, value in dict(entity).items()}
