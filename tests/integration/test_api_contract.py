"""The API against its own OpenAPI schema (schemathesis): no 5xx, responses that match the schema,
and 401 without data for every endpoint called without credentials."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.api.app import AppContext, create_app
from shared.settings import Settings
from shared.tooling.azurite_process import AzuriteProcess
from tests.conftest import TEST_API_KEY, make_settings

ADMIN_KEY = "test-admin-key-0123456789"
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@cache
def contract_settings() -> Settings:
    # Module-level schema loading needs a live app before fixtures run: one Azurite of its own.
    import atexit
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="contract-"))
    azurite = AzuriteProcess(folder / "azurite").start()
    atexit.register(azurite.stop)
    return make_settings(folder / "ws.duckdb", azurite.connection_string, ADMIN_API_KEY=ADMIN_KEY)


@cache
def app() -> Any:
    return create_app(AppContext(contract_settings, clock=lambda: NOW))


schema = schemathesis.openapi.from_asgi("/api/openapi.json", app())


@schema.parametrize()
@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_schema_conformance(case: Any) -> None:
    case.headers = {**(case.headers or {}), "x-api-key": ADMIN_KEY if case.method != "GET" else TEST_API_KEY}
    response = case.call()
    # Semantic refusals of schema-valid input (e.g. from after to) are 400s by design, so the
    # "positive data acceptance" check does not apply; these do.
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                             content_type_conformance, response_schema_conformance])
    assert response.status_code < 500, response.text
    for leak in ("Traceback", "AccountKey", "DefaultEndpointsProtocol", TEST_API_KEY, ADMIN_KEY):
        assert leak not in response.text


def operations() -> list[tuple[str, str]]:
    spec = app().openapi()
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item
            if method in ("get", "put", "post", "delete", "patch")]


@pytest.mark.parametrize(("method", "path"), operations())
def test_every_endpoint_without_credentials_is_401(method: str, path: str) -> None:
    import asyncio

    import httpx

    if path in ("/api/health", "/api/openapi.json", "/api/docs") or path.startswith("/api/dashboard"):
        pytest.skip("public by design: no usage data")
    concrete = path.replace("{subscription}", "team-a").replace("{principal}", "someone")

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as client:
            return await client.request(method, concrete, json={} if method in ("PUT", "POST") else None)

    response = asyncio.run(call())
    assert response.status_code == 401, (method, path, response.text)
    body = response.json()
    assert set(body) == {"error"} and "message" in body["error"]
