"""``API_AUTH=entra``: App Service Authentication signs callers in, the host asks for no function key,
and the app admits only a signed-in principal — on every route but health and the dashboard's
page and assets — scoped by its grant.  The app runs against Azurite; the entry point's auth level
is read from the Functions indexer in a fresh process (indexing twice in one process fails)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.api import dashboard_routes
from shared.api.app import ROUTERS, AppContext, create_app
from shared.api.sign_in import DASHBOARD_ASSETS, OPEN_PATHS, EntraSignIn
from shared.composition import access_store
from shared.core.access import make_grant
from shared.settings import Settings
from tests.billing_support import ADMIN_KEY, with_prices
from tests.conftest import TEST_API_KEY
from tests.usage_support import NOW, expected_rows, principal_headers, seed_cost, seeds, store_seeds

ROOT = Path(__file__).resolve().parents[2]
RANGE = [("from", "2026-11-01"), ("to", "2026-11-30"), ("groupBy", "subscription")]
READER_OID = "aaaaaaaa-1111-2222-3333-444444444444"
READER = principal_headers(READER_OID, "reader@contoso.com")
ADMIN = principal_headers("bbbbbbbb-1111-2222-3333-444444444444", "boss@contoso.com")
STRANGER = principal_headers("cccccccc-1111-2222-3333-444444444444", "nobody@contoso.com")


@pytest.fixture
def entra(settings: Settings, tmp_path: Path) -> Settings:
    signed = with_prices(settings, tmp_path, API_AUTH="entra", TRUST_APP_SERVICE_AUTH="true")
    store_seeds(signed)
    grants = access_store(signed)
    grants.put(make_grant(READER_OID, "reader", ["team-a"]))
    grants.put(make_grant(ADMIN["X-MS-CLIENT-PRINCIPAL-ID"], "admin"))
    return signed


def asgi(settings: Settings, *, gate: bool = True) -> Any:
    app = create_app(AppContext(lambda: settings, clock=lambda: NOW))
    return EntraSignIn(app, lambda: settings) if gate else app


def call(app: Any, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.request(method, path, headers=headers or {}, **kwargs)

    return asyncio.run(run())


def every_route(settings: Settings) -> list[tuple[str, str]]:
    """(method, concrete path) of every route the app serves, path parameters filled in."""
    app = create_app(AppContext(lambda: settings, clock=lambda: NOW))
    found = []
    for route in [*app.routes, *(r for feature in ROUTERS for r in feature.router.routes)]:
        path = re.sub(r"\{[^}]+\}", "x", getattr(route, "path", ""))
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                found.append((method, path))
    return found


def test_every_route_but_the_open_ones_needs_a_signed_in_principal(entra: Settings) -> None:
    app = asgi(entra)
    routes = every_route(entra)
    assert ("GET", "/api/usage") in routes and ("GET", "/api/openapi.json") in routes and len(routes) > 15
    for method, path in routes:
        if path in OPEN_PATHS:
            continue
        # neither the API key nor the admin key admits a caller that did not sign in
        for key in (None, TEST_API_KEY, ADMIN_KEY):
            response = call(app, method, path, {"x-api-key": key} if key else {})
            assert response.status_code == 401, (method, path, key, response.text)
            assert "sign in with Entra ID" in response.json()["error"]["message"]


def test_open_paths_answer_without_sign_in(entra: Settings) -> None:
    app = asgi(entra)
    assert call(app, "GET", "/api/health").status_code == 200
    page = call(app, "GET", "/api/dashboard", params={"code": "leaked"})
    assert page.status_code == 200 and 'data-auth="entra"' in page.text and "code=" not in page.text
    for name in DASHBOARD_ASSETS:
        assert call(app, "GET", f"/api/dashboard/assets/{name}").status_code == 200
    # the gate's list is the dashboard's own: a new asset must be opened (and excluded in infra) on purpose
    assert set(DASHBOARD_ASSETS) == set(dashboard_routes.ASSETS)


@pytest.mark.parametrize("gate", [True, False], ids=["behind the gate", "app alone"])
def test_a_reader_sees_its_own_subscriptions_only(entra: Settings, gate: bool) -> None:
    app = asgi(entra, gate=gate)
    body = call(app, "GET", "/api/usage", READER, params=RANGE).json()
    assert {row["subscriptionId"] for row in body["rows"]} == {"team-a"}
    mine = expected_rows(("subscription",), keep=lambda s: s.key[0] == "team-a")
    assert body["totals"]["totalTokens"] == sum(r["totalTokens"] for r in mine.values()) > 0
    assert Decimal(body["totals"]["cost"]) == sum(seed_cost(s) for s in seeds() if s.key[0] == "team-a")
    assert call(app, "GET", "/api/usage", READER, params=[*RANGE, ("subscription", "team-b")]).status_code == 403
    me = call(app, "GET", "/api/access/me", READER).json()
    assert me == {"caller": f"principal:{READER_OID}", "admin": False, "allSubscriptions": False,
                  "subscriptions": ["team-a"]}


@pytest.mark.parametrize("gate", [True, False], ids=["behind the gate", "app alone"])
def test_the_key_alone_is_refused_and_a_stranger_is_forbidden(entra: Settings, gate: bool) -> None:
    app = asgi(entra, gate=gate)
    refused = call(app, "GET", "/api/usage", {"x-api-key": TEST_API_KEY}, params=RANGE)
    assert refused.status_code == 401 and "totalTokens" not in refused.text
    forbidden = call(app, "GET", "/api/usage", STRANGER, params=RANGE)
    assert forbidden.status_code == 403 and "no access" in forbidden.json()["error"]["message"]
    everything = call(app, "GET", "/api/usage", ADMIN, params=RANGE).json()
    assert {row["subscriptionId"] for row in everything["rows"]} == {s.key[0] for s in seeds()}


def test_admin_writes_need_a_signed_in_admin(entra: Settings) -> None:
    app = asgi(entra, gate=False)  # the app's own rule, without the gate in front
    body = {"subscriptions": ["team-b"]}
    assert call(app, "PUT", "/api/access/someone@contoso.com", {"x-api-key": ADMIN_KEY}, json=body).status_code == 401
    assert call(app, "PUT", "/api/access/someone@contoso.com", READER, json=body).status_code == 403
    granted = call(app, "PUT", "/api/access/someone@contoso.com", ADMIN, json=body)
    assert granted.status_code == 200 and granted.json()["subscriptions"] == ["team-b"]
    assert [g.subscriptions for g in access_store(entra).all() if g.principal == "someone@contoso.com"] == [
        frozenset({"team-b"})]
    # quota writes stay admin-key only, and the caller must still have signed in
    quota = {"period": "month", "tokens": 1000}
    assert call(app, "PUT", "/api/quotas/team-a", {"x-api-key": ADMIN_KEY}, json=quota).status_code == 401
    assert call(app, "PUT", "/api/quotas/team-a", {**READER, "x-api-key": ADMIN_KEY}, json=quota).status_code == 200


@pytest.mark.parametrize("gate", [True, False], ids=["behind the gate", "app alone"])
def test_entra_without_trusting_the_headers_is_a_misconfiguration(entra: Settings, gate: bool) -> None:
    untrusted = entra.with_overrides(TRUST_APP_SERVICE_AUTH="false")
    response = call(asgi(untrusted, gate=gate), "GET", "/api/usage", ADMIN, params=RANGE)
    assert response.status_code == 500 and "misconfigured" in response.json()["error"]["message"]
    assert "totalTokens" not in response.text


def _indexed_http_binding(api_auth: str) -> dict[str, Any]:
    script = ("import json, function_app\n"
              "fn = {f.get_function_name(): f for f in function_app.app.get_functions()}['http_app_func']\n"
              "binding = fn.get_bindings_dict()['bindings'][0]\n"
              "print(json.dumps({'authLevel': str(binding['authLevel'].value),\n"
              "                  'served': type(function_app.app.middleware._app).__name__}))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("API_AUTH", "TRUST_APP_SERVICE_AUTH")}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**env, "API_AUTH": api_auth})
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(("api_auth", "level", "served"), [("entra", "anonymous", "EntraSignIn"),
                                                           ("functionkey", "function", "LazyAsgiApp"),
                                                           ("apikey", "function", "LazyAsgiApp"),
                                                           ("not-a-mode", "function", "LazyAsgiApp")])
def test_the_host_asks_for_no_function_key_only_in_entra_mode(api_auth: str, level: str, served: str) -> None:
    # entra: no key from the host, and the sign-in gate in front of the app; anything else keeps the key
    assert _indexed_http_binding(api_auth) == {"authLevel": level, "served": served}
