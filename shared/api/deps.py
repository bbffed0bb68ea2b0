"""The request-scoped dependencies of the routes (FastAPI ``Depends``): the app's context, the
caller's scope, the admin rule, and the stores and price catalog the services read.

Nothing connects when the app is built: each store is built on the first request that needs it
and kept for the life of the process (:class:`AppContext`).  The usage store's table client is
shared by the feature tables (quotas, prices, alerts, access grants).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar, cast

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from shared.api.auth import ACCESS_ADMIN, QUOTA_ADMIN, AdminRule, GrantStore, require_admin, resolve_scope
from shared.core.access import Scope
from shared.ports import AlertOutbox, MonthReportStore, QuotaRepository, UsageRepository
from shared.services.costing import PriceCatalog
from shared.services.probe import ProbeRepository
from shared.services.report import UsagePages
from shared.settings import Settings

if TYPE_CHECKING:  # adapters load on first use, not with the app (cold start)
    from shared.adapters.access_tables import AccessTableStore
    from shared.adapters.alert_outbox import AlertOutboxTable
    from shared.adapters.probe_tables import ProbeStore
    from shared.adapters.quota_tables import QuotaTableStore
    from shared.adapters.tables import TableStore

T = TypeVar("T")


class AppContext:
    """Lazily built dependencies of the API, one set per process.

    ``store_factory`` replaces the table store built from the settings (tests and benchmarks
    record or reroute its requests); the feature tables then use it too.
    """

    def __init__(self, settings_factory: Callable[[], Settings],
                 store_factory: Callable[[Settings], TableStore] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._settings_factory = settings_factory
        self._store_factory = store_factory
        self._settings: Settings | None = None
        self._extras: dict[str, object] = {}
        self.clock = clock

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = self._settings_factory()
        return self._settings

    def cached(self, name: str, factory: Callable[[Settings], T]) -> T:
        """A per-process dependency built on first use (feature stores, clients)."""
        if name not in self._extras:
            self._extras[name] = factory(self.settings)
        return cast(T, self._extras[name])

    def built(self, name: str) -> bool:
        """Whether :meth:`cached` has built ``name`` yet."""
        return name in self._extras

    @property
    def tables(self) -> TableStore:
        """The account's table store: usage rows, and the client the feature tables share."""
        return self.cached("tables", self._build_tables)

    def _build_tables(self, settings: Settings) -> TableStore:
        if self._store_factory is not None:
            return self._store_factory(settings)
        from shared.composition import table_store

        return table_store(settings)

    @property
    def store(self) -> UsageRepository:
        return self.tables

    def usage_pages(self) -> UsagePages:
        """The usage table read a storage page at a time (the report's resumable reads)."""
        from shared.adapters.usage_pages import TableUsagePages

        return self.cached("usage_pages", lambda _: TableUsagePages(self.tables))

    def month_reports(self) -> MonthReportStore:
        """The org-wide month reports kept once rendered (``shared.services.month_csv``)."""
        from shared.adapters.month_report_tables import TableMonthReports

        return self.cached("month_reports", lambda _: TableMonthReports(self.tables))

    def price_catalog(self) -> PriceCatalog:
        from shared.composition import price_catalog

        return self.cached("price_catalog", lambda settings: price_catalog(settings, self.tables))

    def quota_store(self) -> QuotaTableStore:
        from shared.composition import quota_store

        return self.cached("quota_store", lambda settings: quota_store(settings, self.tables))

    def access_store(self) -> AccessTableStore:
        from shared.composition import access_store

        return self.cached("access_store", lambda settings: access_store(settings, self.tables))

    def alert_outbox(self) -> AlertOutboxTable:
        from shared.composition import alert_outbox

        return self.cached("alert_outbox", lambda settings: alert_outbox(settings, self.tables))

    def probe_store(self) -> ProbeStore:
        from shared.composition import probe_store

        return self.cached("probe_store", probe_store)


async def app_context(request: Request) -> AppContext:
    """The context ``create_app`` put on ``app.state``.

    The dependencies here are ``async`` where they do no I/O: FastAPI then calls them on the event
    loop instead of sending each to the thread pool (a hop per dependency and request).
    """
    return cast(AppContext, request.app.state.chargeback_context)


Context = Annotated[AppContext, Depends(app_context)]


def caller_scope(request: Request, context: Context) -> Scope:
    """Key first (401), then the principal's grant (403 when it has none); once per request."""
    cached = getattr(request.state, "scope", None)
    if isinstance(cached, Scope):
        return cached
    scope = resolve_scope(context.settings, request.headers, context.access_store)
    request.state.scope = scope
    return scope


CallerScope = Annotated[Scope, Depends(caller_scope)]
AUTHORIZED = [Depends(caller_scope)]  # route-level: every data route needs a key (and a grant)


def _admin(rule: AdminRule) -> Callable[[Request, AppContext], None]:
    def require(request: Request, context: Context) -> None:
        require_admin(context.settings, request.headers, rule, context.access_store)

    return require


# Route-level dependencies of writes: checked before the body is even read.
QUOTA_ADMIN_ONLY = [Depends(_admin(QUOTA_ADMIN))]
ACCESS_ADMIN_ONLY = [Depends(_admin(ACCESS_ADMIN))]


async def _built(context: AppContext, name: str, get: Callable[[], T]) -> T:
    """``get()`` of a per-process dependency: on the event loop once it exists, in the thread pool
    the first time (building it imports adapters and creates clients, which must not hold up the loop)."""
    if context.built(name):
        return get()
    return await run_in_threadpool(get)


async def usage_store(context: Context) -> UsageRepository:
    return await _built(context, "tables", lambda: context.store)


async def usage_pages(context: Context) -> UsagePages:
    return await _built(context, "usage_pages", context.usage_pages)


async def month_reports(context: Context) -> MonthReportStore:
    return await _built(context, "month_reports", context.month_reports)


async def price_catalog(context: Context) -> PriceCatalog:
    return await _built(context, "price_catalog", context.price_catalog)


async def quota_store(context: Context) -> QuotaRepository:
    return await _built(context, "quota_store", context.quota_store)


async def access_store(context: Context) -> GrantStore:
    return await _built(context, "access_store", context.access_store)


async def alert_outbox(context: Context) -> AlertOutbox:
    return await _built(context, "alert_outbox", context.alert_outbox)


async def probe_store(context: Context) -> ProbeRepository:
    return await _built(context, "probe_store", context.probe_store)


async def page_token_key(context: Context) -> Callable[[], bytes]:
    """The token key, read only when a token is opened or sealed (a first and only page needs none)."""
    return lambda: context.settings.page_token_key


async def now(context: Context) -> datetime:
    """The request's "now" (the context's clock: tests pin it)."""
    return context.clock()


# Route parameters: ``def route(quotas: Quotas, ...)``.  Typed by the ports the services take.
UsageStore = Annotated[UsageRepository, Depends(usage_store)]
UsageReads = Annotated[UsagePages, Depends(usage_pages)]
Prices = Annotated[PriceCatalog, Depends(price_catalog)]
KeptReports = Annotated[MonthReportStore, Depends(month_reports)]
Quotas = Annotated[QuotaRepository, Depends(quota_store)]
Grants = Annotated[GrantStore, Depends(access_store)]
Outbox = Annotated[AlertOutbox, Depends(alert_outbox)]
Probes = Annotated[ProbeRepository, Depends(probe_store)]
TokenKey = Annotated[Callable[[], bytes], Depends(page_token_key)]
Now = Annotated[datetime, Depends(now)]
