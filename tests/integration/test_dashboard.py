"""The dashboard page and its assets: self-contained (nothing from the internet), served by the app,
chart.js vendored at install time (bootstrap, azd prepackage), deployed, and a clear 503 without it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.api import dashboard_routes
from shared.settings import Settings
from tests.unit.test_dashboard_assets import ROOT
from tests.usage_support import Api


def test_page_is_served_with_a_strict_policy(settings: Settings) -> None:
    response = Api(settings, key="").get("/api/dashboard")  # the page holds no data: no key needed
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert response.headers["referrer-policy"] == "no-referrer"
    html = response.text
    assert 'data-auth="apikey"' in html and "{{" not in html
    assert 'src="dashboard/assets/chart.umd.min.js"' in html and 'src="dashboard/assets/dashboard.js"' in html
    assert "<script>" not in html and " style=" not in html  # no inline script or style (the CSP forbids them)


def test_function_key_is_passed_on_to_every_asset(settings: Settings) -> None:
    functionkey = settings.with_overrides(API_AUTH="functionkey")
    html = Api(functionkey, key="").get("/api/dashboard", {"code": 'k3y/"<x>'}).text
    assert 'data-auth="functionkey"' in html
    assert html.count("?code=k3y%2F%22%3Cx%3E") == 3 and "<x>" not in html  # URL-encoded, HTML-safe
    # in API-key mode a stray ?code= is not echoed
    assert "code=" not in Api(settings, key="").get("/api/dashboard", {"code": "abc"}).text


@pytest.mark.parametrize(("name", "media"), [("dashboard.css", "text/css"), ("dashboard.js", "text/javascript"),
                                             ("chart.umd.min.js", "text/javascript")])
def test_assets(settings: Settings, name: str, media: str) -> None:
    response = Api(settings, key="").get(f"/api/dashboard/assets/{name}")
    assert response.status_code == 200 and response.headers["content-type"].startswith(media)
    assert response.headers["x-content-type-options"] == "nosniff"


def test_vendored_chart_js_is_the_pinned_npm_build(settings: Settings) -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["chart.js"]
    installed = json.loads((ROOT / "node_modules" / "chart.js" / "package.json").read_text())["version"]
    assert pinned == installed == "4.5.1"
    served = Api(settings, key="").get("/api/dashboard/assets/chart.umd.min.js").content
    assert served == (ROOT / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js").read_bytes()


@pytest.mark.parametrize("name", ["dashboard.html", "..%2Fapp.py", "vendor%2Fchart.umd.min.js", "x.js"])
def test_only_listed_assets_are_served(settings: Settings, name: str) -> None:
    response = Api(settings, key="").get(f"/api/dashboard/assets/{name}")
    assert response.status_code == 404 and "import" not in response.text


def test_missing_chart_js_is_503_saying_how_to_fix_it(settings: Settings, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assets = dict(dashboard_routes.ASSETS)
    assets["chart.umd.min.js"] = (tmp_path / "vendor" / "chart.umd.min.js", "text/javascript")
    monkeypatch.setattr(dashboard_routes, "ASSETS", assets)
    response = Api(settings, key="").get("/api/dashboard/assets/chart.umd.min.js")
    assert response.status_code == 503
    assert "scripts/bootstrap.sh" in response.json()["error"]["message"]


