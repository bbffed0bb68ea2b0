"""The API docs: ``GET /api/docs`` (Swagger UI over ``/api/openapi.json``) and its assets
``/api/docs/assets/{name}``, served by the app itself so the page works offline and behind a
firewall.  Swagger UI is vendored at install time (``scripts/vendor-assets.sh``, run by the
bootstrap and azd's ``prepackage`` hook) from the pinned ``swagger-ui-dist`` npm package; when it
is missing an asset answers 503 saying how to install it.

In function-key mode (``API_AUTH=functionkey``) the Functions host wants ``?code=`` on every call,
so the page passes the ``code`` it was opened with on to its assets and the OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response

from shared.api.deps import Context

SWAGGER_UI = Path(__file__).resolve().parent / "static" / "vendor" / "swagger-ui"
ASSET_URL = "/api/docs/assets/"
OPENAPI_URL = "/api/openapi.json"
# The only files served: name -> media type; each is copied from node_modules/swagger-ui-dist/.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
MISSING_VENDOR = ("Swagger UI is not installed: run scripts/vendor-assets.sh (it copies node_modules/swagger-ui-dist/ "
                  "files to shared/api/static/vendor/swagger-ui/)")

router = APIRouter()


def docs_page(code: str | None = None) -> HTMLResponse:
    """Swagger UI's page with every URL on this app (``?code=`` appended when given)."""
    suffix = f"?code={quote(code, safe='')}" if code else ""
    return get_swagger_ui_html(openapi_url=OPENAPI_URL + suffix, title="APIM Chargeback - API docs",
                               swagger_js_url=f"{ASSET_URL}swagger-ui-bundle.js{suffix}",
                               swagger_css_url=f"{ASSET_URL}swagger-ui.css{suffix}",
                               swagger_favicon_url=f"{ASSET_URL}favicon-32x32.png{suffix}")


@router.get("/api/docs", include_in_schema=False)
def docs(context: Context, code: Annotated[str | None, Query(max_length=512)] = None) -> HTMLResponse:
    return docs_page(code if context.settings.api_auth == "functionkey" else None)


@router.get("/api/docs/assets/{name}", include_in_schema=False)
def asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        return JSONResponse({"error": {"message": f"no docs asset {name!r}"}}, status_code=404)
    path = SWAGGER_UI / name
    if not path.is_file():
        return JSONResponse({"error": {"message": MISSING_VENDOR}}, status_code=503)
    return Response(path.read_bytes(), media_type=media_type,
                    headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})
