"""Synthetic probe results: ``GET /api/probes``.

Readable by every authorized caller, scoped principals included: probe results describe the shared
gateway and its deployments, not any subscription's usage (a principal without a grant still gets 403).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from shared.api.deps import AUTHORIZED, Now, Probes
from shared.services.probe import parse_probe_query, probe_report

FROM_HELP = "ISO date or datetime, inclusive; default: 24 hours before `to`"
TO_HELP = "ISO date (that whole day included) or datetime (exclusive); default: now"

router = APIRouter()


@router.get("/api/probes", dependencies=AUTHORIZED,
            summary="Synthetic probe attempts and availability per deployment",
            responses={400: {"description": "A bad parameter (named)"}, 401: {"description": "No or bad credentials"}})
def probes(
    now: Now,
    store: Probes,
    deployment: Annotated[list[str] | None, Query(description="Deployment name; repeat for several")] = None,
    start: Annotated[str | None, Query(alias="from", description=FROM_HELP)] = None,
    end: Annotated[str | None, Query(alias="to", description=TO_HELP)] = None,
) -> JSONResponse:
    """Attempts in the range (oldest first) and per deployment: availability %, nearest-rank p50/p95
    latency of the successful attempts (and time to first token of streamed ones), last success,
    consecutive failed runs at the end of the range, and the stored incident state."""
    return JSONResponse(probe_report(store, parse_probe_query(deployment, start, end, now)))
