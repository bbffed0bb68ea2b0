"""``/api/docs`` works offline: the page loads Swagger UI from the app itself (the vendored,
pinned ``swagger-ui-dist`` build), never from a CDN, and the deploy package carries it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.api import docs_routes
from shared.settings import Settings
from tests.usage_support import Api

ROOT = Path(__file__).resolve().parents[2]
# src=/href= values and url: '...' in the page
REFERENCES = re.compile(r"""(?:src|href)="([^"]+)"|url: '([^']+)'""")


def references(html: str) -> list[str]:
    return [a or b for a, b in REFERENCES.findall(html)]


def test_docs_page_references_only_assets_the_app_serves(settings: Settings) -> None:
    api = Api(settings, key="")  # the docs hold no data: no key, as the OpenAPI document
    page = api.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = references(page.text)
    assert sorted(urls) == ["/api/docs/assets/favicon-32x32.png", "/api/docs/assets/swagger-ui-bundle.js",
                            "/api/docs/assets/swagger-ui.css", "/api/openapi.json"]
    assert "http" not in page.text.replace("http-equiv", "")  # no absolute URL anywhere: no CDN
    dist = ROOT / "node_modules" / "swagger-ui-dist"
    for url in urls:
        served = api.get(url)
        assert served.status_code == 200, url
        if url.startswith("/api/docs/assets/"):
            assert served.content == (dist / url.rsplit("/", 1)[1]).read_bytes()  # byte for byte the npm build
    assert api.get("/api/docs/assets/swagger-ui.css").headers["content-type"].startswith("text/css")
    assert api.get("/api/docs/assets/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")


def test_function_key_is_passed_on_to_every_reference(settings: Settings) -> None:
    api = Api(settings.with_overrides(API_AUTH="functionkey"), key="")
    urls = references(api.get("/api/docs", params={"code": "k/1=="}).text)
    assert len(urls) == 4 and all(url.endswith("?code=k%2F1%3D%3D") for url in urls)


@pytest.mark.parametrize("name", ["index.html", "..%2F..%2Fapp.py", "swagger-ui.js", "x.css"])
def test_only_listed_assets_are_served(settings: Settings, name: str) -> None:
    assert Api(settings, key="").get(f"/api/docs/assets/{name}").status_code == 404


def test_missing_vendored_swagger_ui_is_503_saying_how_to_fix_it(settings: Settings, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docs_routes, "SWAGGER_UI", tmp_path / "absent")
    response = Api(settings, key="").get("/api/docs/assets/swagger-ui.css")
    assert response.status_code == 503 and "scripts/vendor-assets.sh" in response.json()["error"]["message"]


def test_swagger_ui_is_pinned_vendored_and_packaged() -> None:
    from tests.unit.test_infra import funcignored

    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["swagger-ui-dist"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned)  # npm install --save-exact
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/swagger-ui-dist"]["version"] == pinned
    installed = json.loads((ROOT / "node_modules" / "swagger-ui-dist" / "package.json").read_text())["version"]
    assert installed == pinned
    vendor_script = (ROOT / "scripts" / "vendor-assets.sh").read_text()
    for name in docs_routes.ASSETS:
        vendored = f"shared/api/static/vendor/swagger-ui/{name}"
        assert f"node_modules/swagger-ui-dist/{name} {vendored}" in vendor_script
        assert not funcignored(vendored)  # the deploy package keeps what the docs page loads
        assert (ROOT / vendored).is_file()
    assert "bash scripts/vendor-assets.sh" in (ROOT / "scripts" / "bootstrap.sh").read_text()
    azure = (ROOT / "azure.yaml").read_text()
    assert "run: bash scripts/vendor-assets.sh" in azure and "swagger-ui-dist/swagger-ui-bundle.js" in azure
