"""Dependencies of the FinOps routes (cost centers, FOCUS export, reconciliation): the subscription
directory's table and the container Cost Management exports land in.

Both are built on first use, once per process, in the thread pool (building one imports an
adapter and creates a client).  The directory's table goes through the usage store's client, as
every feature table does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from starlette.concurrency import run_in_threadpool

from shared.api.deps import Context
from shared.core.cost_centers import SubscriptionInfoRepository

if TYPE_CHECKING:
    from shared.services.reconciliation import CostExportStore


async def subscription_store(context: Context) -> SubscriptionInfoRepository:
    from shared.adapters.subscription_tables import SubscriptionTableStore
    from shared.adapters.table_access import TableAccess

    def get() -> SubscriptionInfoRepository:
        return context.cached("subscription_store",
                              lambda settings: SubscriptionTableStore(TableAccess(context.tables,
                                                                                  settings.table_prefix)))

    return get() if context.built("subscription_store") else await run_in_threadpool(get)


async def cost_export_store(context: Context) -> CostExportStore | None:
    """The export container of COST_EXPORT_CONTAINER; ``None`` when none is configured."""
    def get() -> CostExportStore | None:
        from shared.composition import cost_export_store as build

        return context.cached("cost_export_store", build)

    return get() if context.built("cost_export_store") else await run_in_threadpool(get)


Subscriptions = Annotated[SubscriptionInfoRepository, Depends(subscription_store)]
CostExports = Annotated["CostExportStore | None", Depends(cost_export_store)]
