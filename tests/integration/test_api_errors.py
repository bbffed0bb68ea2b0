"""One API contract: the admin key reads, one JSON error shape everywhere (404, 405, 413, unexpected
500 included), unknown query parameters refused by name for every route, readable messages, write
bodies capped, and the OpenAPI document saying so."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.api.app import AppContext, create_app
from shared.api.bodies import MAX_BODY
from shared.settings import Settings
from tests.billing_support import ADMIN_KEY, with_prices
from tests.conftest import TEST_API_KEY
from tests.usage_support import NOW, store_seeds

RANGE = {"from": "2026-11-01", "to": "2026-11-30"}
LEAKS = ("Traceback", "AccountKey", "DefaultEndpointsProtocol", "File \"", TEST_API_KEY, ADMIN_KEY)


@pytest.fixture
def app_settings(settings: Settings, tmp_path: Path) -> Settings:
    priced = with_prices(settings, tmp_path)
    store_seeds(priced)
    return priced


def call(settings: Settings, method: str, path: str, *, key: str | None = TEST_API_KEY, store_factory: Any = None,
         **kwargs: Any) -> httpx.Response:
    app = create_app(AppContext(lambda: settings, store_factory, clock=lambda: NOW))

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                     base_url="http://t", headers={"x-api-key": key} if key else {}) as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(run())


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) <= {"code", "message", "parameter"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    for leak in LEAKS:
        assert leak not in response.text
    return dict(body["error"])


def test_the_admin_key_reads_wherever_the_api_key_does(app_settings: Settings) -> None:
    for path in ("/api/usage", "/api/chargeback", "/api/quotas", "/api/access/me", "/api/usage/team-a/summary"):
        as_reader = call(app_settings, "GET", path, params=RANGE if path == "/api/usage" else None)
        as_admin = call(app_settings, "GET", path, key=ADMIN_KEY, params=RANGE if path == "/api/usage" else None)
        assert as_reader.status_code == as_admin.status_code == 200, (path, as_admin.text)
        assert as_admin.json() == as_reader.json()
    wrong = call(app_settings, "GET", "/api/usage", key="not-a-key-0123456789")
    assert error_of(wrong, 401)["code"] == "not_authorized"
    # without ADMIN_API_KEY configured, nothing but the API key reads
    plain = app_settings.with_overrides(ADMIN_API_KEY="")
    assert call(plain, "GET", "/api/usage", key=ADMIN_KEY).status_code == 401


def test_404_and_405_have_the_error_shape(app_settings: Settings) -> None:
    missing = error_of(call(app_settings, "GET", "/api/nothing-here"), 404)
    assert missing["code"] == "not_found" and "/api/nothing-here" in missing["message"]
    assert error_of(call(app_settings, "GET", "/elsewhere", key=None), 404)["code"] == "not_found"
    response = call(app_settings, "DELETE", "/api/usage")
    wrong = error_of(response, 405)
    assert wrong["code"] == "method_not_allowed" and "GET" in response.headers["allow"]
    assert "DELETE is not allowed on /api/usage" in wrong["message"]


def test_unknown_query_parameters_are_400_naming_them_and_listing_the_accepted(app_settings: Settings) -> None:
    error = error_of(call(app_settings, "GET", "/api/usage", params={"fromm": "2026-11-01"}), 400)
    assert error["parameter"] == "fromm" and "'fromm'" in error["message"]
    for accepted in ("from", "to", "subscription", "groupBy", "pageSize", "next", "format"):
        assert accepted in error["message"]
    # the typo is no longer silently ignored: the same request without it answers
    assert call(app_settings, "GET", "/api/usage", params=RANGE).status_code == 200
    two = error_of(call(app_settings, "GET", "/api/quotas", params={"b": "1", "a": "2"}), 400)
    assert two["parameter"] == "a" and "'a', 'b'" in two["message"] and "accepts: none" in two["message"]
    # ?code= is the function key the Functions host passes on: accepted everywhere
    assert call(app_settings, "GET", "/api/usage", params={**RANGE, "code": "k"}).status_code == 200


def test_every_route_refuses_an_unknown_parameter(app_settings: Settings) -> None:
    spec = call(app_settings, "GET", "/api/openapi.json").json()
    checked = 0
    for path, item in spec["paths"].items():
        for method in item:
            concrete = path.replace("{subscription}", "team-a").replace("{principal}", "someone").replace(
                "{name}", "x").replace("{deployment}", "d")
            response = call(app_settings, method.upper(), concrete, key=ADMIN_KEY, params={"bogus_param": "1"},
                            json={} if method in ("put", "post") else None)
            error = error_of(response, 400)
            assert error["parameter"] == "bogus_param", (method, path, error)
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize(("path", "params", "parameter", "words"), [
    ("/api/usage/team-a/summary", {"month": "2026-13"}, "month", "expected YYYY-MM (e.g. 2026-11), got '2026-13'"),
    ("/api/chargeback", {"month": "November"}, "month", "expected YYYY-MM"),
    ("/api/usage", {"pageSize": "many"}, "pageSize", "expected a whole number, got 'many'"),
    ("/api/usage", {"pageSize": "0"}, "pageSize", "must be at least 1"),
    ("/api/usage", {"pageSize": "5001"}, "pageSize", "must be at most 5000"),
    ("/api/alerts", {"limit": "x"}, "limit", "expected a whole number"),
])
def test_messages_are_readable(app_settings: Settings, path: str, params: dict[str, str], parameter: str,
                               words: str) -> None:
    error = error_of(call(app_settings, "GET", path, params=params), 400)
    assert error["parameter"] == parameter and words in error["message"], error
    assert "pattern" not in error["message"] and "^" not in error["message"]


QUOTA = {"period": "month", "tokens": 1000}


def test_write_bodies_over_64_kib_are_413_before_being_read_whole(app_settings: Settings) -> None:
    big = json.dumps({**QUOTA, "padding": "x" * MAX_BODY}).encode()
    error = error_of(call(app_settings, "PUT", "/api/quotas/team-a", key=ADMIN_KEY, content=big,
                          headers={"content-type": "application/json"}), 413)
    assert error["code"] == "body_too_large" and error["parameter"] == "body" and "64 KiB" in error["message"]
    sent: list[int] = []

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(1000):
            sent.append(1)
            yield b" " * 4096

    response = call(app_settings, "PUT", "/api/quotas/team-a", key=ADMIN_KEY, content=chunked())
    assert error_of(response, 413)["code"] == "body_too_large"
    assert len(sent) < 1000  # refused part way, not after reading it all
    lying = call(app_settings, "PUT", "/api/quotas/team-a", key=ADMIN_KEY, content=big,
                 headers={"content-length": "10"})
    assert lying.status_code in (400, 413)
    # the admin check comes first, the body is never read for a caller without the admin key
    assert error_of(call(app_settings, "PUT", "/api/quotas/team-a", content=big), 401)["code"] == "not_authorized"
    # just under the limit is read (and refused or taken on its merits)
    fine = json.dumps(QUOTA).encode()
    assert call(app_settings, "PUT", "/api/quotas/team-a", key=ADMIN_KEY, content=fine).status_code == 200
    assert call(app_settings, "PUT", "/api/access/someone", key=ADMIN_KEY, content=big).status_code == 413


def test_an_unexpected_failure_is_a_500_in_the_error_shape(app_settings: Settings) -> None:
    def broken(_: Settings) -> Any:
        raise RuntimeError("secret internals: AccountKey=abc")

    error = error_of(call(app_settings, "GET", "/api/usage", store_factory=broken), 500)
    assert error["code"] == "internal_error" and "AccountKey" not in error["message"]


def test_openapi_documents_the_error_shape(app_settings: Settings) -> None:
    spec = call(app_settings, "GET", "/api/openapi.json").json()
    assert spec["components"]["schemas"]["Error"]["required"] == ["error"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            assert responses["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            if "requestBody" in operation:
                assert "413" in responses, (method, path)
