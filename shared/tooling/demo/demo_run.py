"""``chargeback local-run``: the whole pipeline on this machine.

Azurite (tables) -> DuckDB workspace -> dev gateway: live demo traffic + a synthetic probe ->
rollup -> per-subscription summary -> report API.  An existing workspace (imported logs, earlier
runs) is kept and rolled up; demo data is written when there is none, or on ``--fresh``.
"""

from __future__ import annotations

import shutil
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.adapters import local_workspace
from shared.composition import rollup_service, table_store
from shared.core.usage import Counters, Granularity, total
from shared.settings import Settings
from shared.tooling.azurite_process import AzuriteProcess
from shared.tooling.demo import demo_data, gateway_demo
from shared.tooling.demo.local_ports import plan_ports
from shared.tooling.demo.workspace_state import read_contents, set_aside
from shared.tooling.dev_gateway import DevGateway, GatewayConfig

DEMO_DAYS = 3


def write_demo_workspace(path: Path, seed: int, days: int, end: datetime | None = None) -> tuple[int, int]:
    """Replace the workspace file with generated traffic; returns (gateway rows, LLM-log rows)."""
    traffic = demo_data.generate(seed=seed, days=days, end=end)
    path.unlink(missing_ok=True)
    con = local_workspace.connect(path)
    try:
        local_workspace.create_tables(con)
        gateway = local_workspace.insert_rows(con, "ApiManagementGatewayLogs", traffic.gateway)
        llm = local_workspace.insert_rows(con, "ApiManagementGatewayLlmLog", traffic.llm)
    finally:
        con.close()
    return gateway, llm


def summary_table(settings: Settings, start: datetime, end: datetime) -> str:
    """Per-subscription totals and cost over ``[start, end)`` read back from Table Storage."""
    from shared.composition import price_catalog
    from shared.core.pricing import Cost, display
    from shared.services.costing import usage_costs

    store = table_store(settings)
    rows = store.read_all(Granularity.DAY, start, end)
    prices = price_catalog(settings, store).current()
    by_sub: dict[str, tuple[Counters, Cost]] = {}
    for row, row_cost in zip(rows, usage_costs(rows, store, prices), strict=True):
        counters, cost = by_sub.get(row.subscription_id, (Counters(), Cost()))
        by_sub[row.subscription_id] = (counters + row.counters, cost + row_cost)
    header = (f"{'subscription':<20}{'requests':>10}{'prompt':>12}{'completion':>12}{'total':>12}"
              f"{'errors':>8}{'unmetered':>11}{'cost ' + prices.currency:>14}")
    lines = [header, "-" * len(header)]

    def line(name: str, c: Counters, cost: Cost) -> str:
        unpriced = "*" if cost.unpriced_tokens else " "
        return (f"{name:<20}{c.requests:>10}{c.prompt_tokens:>12}{c.completion_tokens:>12}{c.total_tokens:>12}"
                f"{c.error_requests:>8}{c.unmetered_requests:>11}{display(cost.amount):>13}{unpriced}")

    for sub, (counters, cost) in sorted(by_sub.items(), key=lambda item: -item[1][0].total_tokens):
        lines.append(line(sub, counters, cost))
    lines.append("-" * len(header))
    lines.append(line("TOTAL", total(rows), sum((c for _, c in by_sub.values()), Cost())))
    if any(cost.unpriced_tokens for _, cost in by_sub.values()):
        lines.append("* has tokens of a model without a price (reported as unpriced, not as zero cost)")
    return "\n".join(lines)


def local_run(settings: Settings, host: str, port: int, seed: int, serve: bool = True, fresh: bool = False) -> None:
    """The whole pipeline on this machine; ``port == 0`` takes free ports for every listener."""
    import uvicorn

    ports = plan_ports(port, host, serve)  # before anything starts: a taken port is an error naming it
    workspace = settings.local_workspace_path
    existing = read_contents(workspace)
    demo = fresh or existing is None or existing.empty
    if existing is not None and not existing.empty and fresh:
        previous = set_aside(workspace)
        print(f"warning: --fresh replaces the workspace {workspace} ({existing.describe()}) with demo data and "
              f"empties the local tables; the previous workspace is kept as {previous}")
    elif existing is not None and not existing.empty:
        print(f"keeping the workspace {workspace} ({existing.describe()}); `--fresh` replaces it with demo data")
    if demo:  # demo data starts from empty tables too
        shutil.rmtree(workspace.parent / "azurite", ignore_errors=True)
    azurite = AzuriteProcess(workspace.parent / "azurite", port=ports.azurite)
    # SIGTERM (e.g. from a supervisor) must still stop Azurite through the `with` below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"starting Azurite (tables) on 127.0.0.1:{azurite.port}, data in {azurite.location}")
    # The dev gateway (APIM stand-in) logs live traffic into the same workspace; no ingestion lag locally.
    dev_gateway = DevGateway(GatewayConfig.default(), workspace, port=ports.gateway)
    with azurite, dev_gateway:
        settings = settings.with_overrides(LOG_SOURCE="local", TABLES_CONNECTION_STRING=azurite.connection_string,
                                           ROLLUP_INGESTION_DELAY_MINUTES="0")
        # Traffic stops before the ingestion delay, so the scheduled run sees every hour complete.
        end = (datetime.now(UTC) - settings.rollup_ingestion_delay).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=DEMO_DAYS)
        if demo:
            gateway, llm = write_demo_workspace(workspace, seed, DEMO_DAYS, end)
            print(f"demo workspace {workspace}: {gateway} gateway rows, {llm} LLM-log rows "
                  f"({DEMO_DAYS} days to {end.isoformat()}, seed {seed})")
        elif existing is not None and existing.first is not None:
            start = min(start, existing.first.replace(minute=0, second=0, microsecond=0))
        settings = gateway_demo.run(settings, dev_gateway, seed)  # demo traffic through the gateway, then a probe
        service = rollup_service(settings)
        backfill = service.backfill(start, end)
        print(f"backfill: {backfill.summary()}")
        scheduled = service.run()
        print(f"scheduled run: {scheduled.summary()}")
        print()
        print(summary_table(settings, start - timedelta(days=1), end + timedelta(days=1)))
        print()
        if not serve:
            return
        from shared.api.app import AppContext, create_app

        app = create_app(AppContext(lambda: settings))
        base = f"http://{host}:{ports.api}"
        print(f"report API: {base}/api/usage?granularity=day   (header x-api-key: API_KEY from local.settings.json)")
        print(f"OpenAPI docs: {base}/api/docs      health: {base}/api/health")
        print(f"probe results: {base}/api/probes   dev gateway: {dev_gateway.url} "
              f"(e.g. api-key {next(iter(dev_gateway.config.keys))})")
        print(f"dashboard: {base}/api/dashboard   (asks for API_KEY once)")
        print("Ctrl-C stops the API and Azurite.")
        uvicorn.run(app, host=host, port=ports.api, log_level="warning")
