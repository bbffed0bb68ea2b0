"""The dashboard: ``GET /api/dashboard`` (one HTML page) and its assets ``/api/dashboard/assets/{name}``.

The page holds no data: its script calls the JSON API with the caller's own credentials (the API
key, asked once and kept in ``sessionStorage``; with a function key its ``?code=``, passed on to
every call and asset; with ``API_AUTH=entra`` App Service Authentication's session cookie, and
nothing in the URL).  ``?from=&to=&subscription=`` preset the view (the script reads them).
Everything is served from here — no CDN, no web font — and the page's
Content-Security-Policy allows nothing else.  chart.js is vendored at install time
(``scripts/bootstrap.sh``, azd ``prepackage``) from the pinned npm package; when it is missing the
asset answers 503 saying so.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from shared.api.deps import Context

STATIC = Path(__file__).resolve().parent / "static"
VENDOR = STATIC / "vendor"
CHART_JS = "chart.umd.min.js"
# The only files served: name -> (path, media type).  Nothing else under static/ is reachable.
ASSETS = {
    "dashboard.css": (STATIC / "dashboard.css", "text/css; charset=utf-8"),
    "dashboard.js": (STATIC / "dashboard.js", "text/javascript; charset=utf-8"),
    CHART_JS: (VENDOR / CHART_JS, "text/javascript; charset=utf-8"),
}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
MISSING_VENDOR = (f"the dashboard's chart library is not installed: run scripts/bootstrap.sh (it copies "
                  f"node_modules/chart.js/dist/{CHART_JS} to shared/api/static/vendor/)")


def render_page(auth_mode: str, code: str | None) -> str:
    """The page with the auth mode and, in function-key mode, ``?code=`` on every asset URL."""
    suffix = f"?code={quote(code, safe='')}" if code else ""
    text = (STATIC / "dashboard.html").read_text(encoding="utf-8")
    return (text.replace("{{AUTH_MODE}}", html.escape(auth_mode, quote=True))
                .replace("{{ASSET_QUERY}}", html.escape(suffix, quote=True)))


router = APIRouter()


# The page's own view parameters: read by its script (a bookmarkable range and filter), never by the server.
VIEW = {"from": "first day shown (YYYY-MM-DD)", "to": "last day shown (YYYY-MM-DD)",
        "subscription": "subscriptions to show (repeat or comma-separate)"}


@router.get("/api/dashboard", include_in_schema=False)
def dashboard(
    context: Context,
    code: Annotated[str | None, Query(max_length=512)] = None,
    _from: Annotated[str | None, Query(alias="from", max_length=10, description=VIEW["from"])] = None,
    _to: Annotated[str | None, Query(alias="to", max_length=10, description=VIEW["to"])] = None,
    _subscription: Annotated[list[str] | None, Query(alias="subscription", description=VIEW["subscription"])] = None,
) -> HTMLResponse:
    mode = context.settings.api_auth
    return HTMLResponse(render_page(mode, code if mode == "functionkey" else None), headers=PAGE_HEADERS)


@router.get("/api/dashboard/assets/{name}", include_in_schema=False)
def asset(name: str) -> Response:
    entry = ASSETS.get(name)
    if entry is None:
        return JSONResponse({"error": {"message": f"no dashboard asset {name!r}"}}, status_code=404)
    path, media_type = entry
    if not path.is_file():
        return JSONResponse({"error": {"message": MISSING_VENDOR}}, status_code=503)
    return Response(path.read_bytes(), media_type=media_type,
                    headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})
