"""Shared Table Storage access for the feature stores (quotas, prices, alert outbox, enforcement).

They reuse the account connection and the SDK-error mapping of :class:`TableStore` (one client
per process, the same ``StorageError`` family), so a feature table fails exactly like the usage
table does.  Every filter is parameterized; no value is formatted into filter text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from shared.adapters.tables import TableStore

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
