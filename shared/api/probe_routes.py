"""Synthetic probe results: ``GET /api/probes``.

Readable by every authorized caller, scoped principals included: probe results describe the shared
gateway and its deployments, not any subscription's usage (a principal without a grant still gets 403).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from shared.services.probe import parse_probe_query, probe_report

if TYPE_CHECKING:
    from shared.adapters.probe_tables import ProbeStore
    from shared.api.app import AppContext
    from shared.settings import Settings

FROM_HELP = "ISO date or datetime, inclusive; default: 24 hours before `to`"
TO_HELP = "ISO date (that whole day included) or datetime (exclusive); default: now"


def _store(settings: Settings) -> ProbeStore:
    from shared.composition import probe_store

    return probe_store(settings)


def register(app: FastAPI, context: AppContext, authorized: list[Any]) -> None:
    @app.get("/api/probes", dependencies=authorized, summary="Synthetic probe attempts and availability per deployment",
             responses={400: {"description": "A bad parameter (named)"}, 401: {"description": "No or bad credentials"}})
    def probes(
        deployment: Annotated[list[str] | None, Query(description="Deployment name; repeat for several")] = None,
        start: Annotated[str | None, Query(alias="from", description=FROM_HELP)] = None,
        end: Annotated[str | None, Query(alias="to", description=TO_HELP)] = None,
    ) -> JSONResponse:
        """Attempts in the range (oldest first) and per deployment: availability %, nearest-rank p50/p95
        latency of the successful attempts (and time to first token of streamed ones), last success,
        consecutive failed runs at the end of the range, and the stored incident state."""
        query = parse_probe_query(deployment, start, end, context.clock())
        return JSONResponse(probe_report(context.cached("probe_store", _store), query))
