"""Quotas: validation, Table Storage round trips (Azurite), the API (admin key) and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from shared.composition import quota_store
from shared.core.quotas import Period, Quota, QuotaBook, make_quota
from shared.settings import Settings
from shared.tooling.cli import main
from tests.billing_support import ADMIN_KEY, call, with_prices
from tests.conftest import TEST_API_KEY

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.fixture
def admin(settings: Settings, tmp_path: Path) -> Settings:
    return with_prices(settings, tmp_path)


def test_quotas_round_trip_through_azurite(admin: Settings) -> None:
    store = quota_store(admin)
    store.put(make_quota("team-a", "month", 5_000_000, "250.50"))
    store.put(make_quota("team-a", "day", None, "10"))
    store.put(make_quota("*", "month", 10**12))
    store.put(make_quota("weird/#?id", "day", 5))  # encoded into a safe PartitionKey
    assert quota_store(admin).for_subscription("team-a") == [
        Quota("team-a", Period.DAY, None, Decimal("10")), Quota("team-a", Period.MONTH, 5_000_000, Decimal("250.50"))]
    assert quota_store(admin).for_subscription("weird/#?id") == [Quota("weird/#?id", Period.DAY, 5, None)]
    assert len(quota_store(admin).all()) == 4
    store.put(make_quota("team-a", "month", 7))  # replace: the cost limit is gone
    assert quota_store(admin).for_subscription("team-a")[1] == Quota("team-a", Period.MONTH, 7, None)
    assert store.delete("team-a", Period.DAY) == 1
    assert store.delete("team-a", None) == 1
    assert store.delete("team-a", None) == 0
    book = QuotaBook(quota_store(admin).all())
    assert book.effective("team-z", Period.MONTH) == Quota("*", Period.MONTH, 10**12, None)  # the default
    assert book.effective("team-z", Period.DAY) is None
    assert book.effective("unattributed", Period.MONTH) is None  # the default never applies to it
    assert book.effective("synthetic-probe", Period.MONTH) is None  # nor to probe traffic, which is not charged


def put(settings: Settings, sub: str, body: object, key: str | None = ADMIN_KEY) -> httpx.Response:
    return call(settings, "PUT", f"/api/quotas/{sub}", now=NOW, key=key,
                content=json.dumps(body) if not isinstance(body, bytes) else body,
                headers={"content-type": "application/json"})


def test_api_quota_writes_need_the_admin_key(admin: Settings) -> None:
    body = {"period": "month", "tokens": 1000}
    for key in ("", TEST_API_KEY, "wrong-admin-key-0123456"):
        response = put(admin, "team-a", body, key=key)
        assert response.status_code == 401, key
        assert ADMIN_KEY not in response.text
    delete = call(admin, "DELETE", "/api/quotas/team-a", now=NOW)  # normal key
    assert delete.status_code == 401
    assert quota_store(admin).all() == []
    # writes are disabled while ADMIN_API_KEY is not configured
    no_admin = admin.with_overrides(ADMIN_API_KEY="")
    response = put(no_admin, "team-a", body)
    assert response.status_code == 401 and "not configured" in response.json()["error"]["message"]


def test_api_quota_put_get_delete(admin: Settings) -> None:
    response = put(admin, "team-a", {"period": "month", "tokens": 5_000_000, "cost": "250.00"})
    assert response.status_code == 200
    assert response.json() == {"subscriptionId": "team-a", "period": "month", "tokens": 5_000_000,
                               "cost": "250.00"}
    assert put(admin, "*", {"period": "day", "cost": "5"}).status_code == 200
    assert quota_store(admin).for_subscription("team-a") == [Quota("team-a", Period.MONTH, 5_000_000,
                                                                   Decimal("250.00"))]
    got = call(admin, "GET", "/api/quotas/team-a", now=NOW).json()  # read with the normal key
    assert got["quotas"][0]["tokens"] == 5_000_000
    assert got["effective"]["day"] == {"subscriptionId": "*", "period": "day", "tokens": None, "cost": "5.00",
                                       "source": "default"}
    assert got["effective"]["month"]["source"] == "own"
    assert len(call(admin, "GET", "/api/quotas", now=NOW).json()["quotas"]) == 2
    deleted = call(admin, "DELETE", "/api/quotas/team-a", now=NOW, key=ADMIN_KEY, params={"period": "month"})
    assert deleted.status_code == 200 and deleted.json()["deleted"] == 1
    assert quota_store(admin).for_subscription("team-a") == []


@pytest.mark.parametrize(("body", "parameter"), [
    ({"period": "week", "tokens": 5}, "period"),
    ({"tokens": 5}, "period"),
    ({"period": "month"}, "tokens"),
    ({"period": "month", "tokens": -1}, "tokens"),
    ({"period": "month", "tokens": True}, "tokens"),
    ({"period": "month", "cost": "lots"}, "cost"),
    ({"period": "month", "cost": 2.5}, "cost"),
    ({"period": "month", "tokens": 5, "owner": "x"}, "owner"),
    ([1, 2], "body"),
    (b"{not json", "body"),
])
def test_api_invalid_quota_is_400_naming_the_field(admin: Settings, body: object, parameter: str) -> None:
    response = put(admin, "team-a", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["parameter"] == parameter and parameter in error["message"]
    assert quota_store(admin).all() == []


def test_api_alerts_filters_are_checked(admin: Settings) -> None:
    assert call(admin, "GET", "/api/alerts", now=NOW).json() == {"alerts": []}
    bad = call(admin, "GET", "/api/alerts", now=NOW, params={"status": "lost"})
    assert bad.status_code == 400 and bad.json()["error"]["parameter"] == "status"
    assert call(admin, "GET", "/api/alerts", now=NOW, key="").status_code == 401


def test_openapi_lists_the_new_routes(admin: Settings) -> None:
    paths = call(admin, "GET", "/api/openapi.json", now=NOW).json()["paths"]
    assert {"/api/quotas", "/api/quotas/{subscription}", "/api/alerts", "/api/chargeback", "/api/prices"} <= set(paths)
    assert "requestBody" in paths["/api/quotas/{subscription}"]["put"]


def test_cli_quota_commands(admin: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": admin._values}))
    base = ["--settings", str(path), "quota"]
    assert main([*base, "set", "team-a", "--period", "month", "--tokens", "5000000", "--cost", "250"]) == 0
    assert main([*base, "set", "*", "--period", "day", "--tokens", "100000"]) == 0
    assert quota_store(admin).for_subscription("team-a") == [Quota("team-a", Period.MONTH, 5_000_000, Decimal(250))]
    capsys.readouterr()
    assert main([*base, "list"]) == 0
    listing = capsys.readouterr().out
    assert "team-a" in listing and "5,000,000 tokens" in listing and "250.00 cost" in listing and "*" in listing
    assert main([*base, "set", "team-a", "--period", "fortnight", "--tokens", "5"]) == 2
    assert "period" in capsys.readouterr().err
    assert main([*base, "set", "team-a", "--period", "day"]) == 2
    assert "tokens" in capsys.readouterr().err
    assert main([*base, "set", "team-a", "--period", "day", "--cost", "-3"]) == 2
    assert "cost" in capsys.readouterr().err
    assert main([*base, "delete", "team-a"]) == 0
    assert "deleted 1" in capsys.readouterr().out
    assert quota_store(admin).for_subscription("team-a") == []


