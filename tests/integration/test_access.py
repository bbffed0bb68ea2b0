"""Per-caller scoping (issue #6): App Service principals mapped to subscriptions in <prefix>access,
401/403 with clear messages and never data, and the same scope on every data route, CSV and token."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.composition import access_store, alert_outbox, quota_store
from shared.core.access import make_grant
from shared.core.alerting import Alert
from shared.core.quotas import Period, make_quota
from shared.settings import Settings
from shared.tooling.cli import main
from tests.billing_support import ADMIN_KEY, with_prices
from tests.integration.test_usage_report import assert_single_partition, recorded_api
from tests.usage_support import NOW, Api, Seed, expected_rows, principal_headers, seed_cost, seeds, store_seeds

RANGE = [("from", "2026-11-01"), ("to", "2026-11-30")]
READER_OID = "11111111-2222-3333-4444-555555555555"
READER = principal_headers(READER_OID, "Reader@Contoso.com")
ADMIN_OID = "99999999-0000-0000-0000-000000000001"
ADMIN = principal_headers(ADMIN_OID, "boss@contoso.com")
STRANGER = principal_headers("00000000-dead-beef-0000-000000000000", "nobody@contoso.com")


@pytest.fixture
def scoped(settings: Settings, tmp_path: Path) -> Settings:
    """Prices, seeded rows, TRUST_APP_SERVICE_AUTH on; a reader of team-a and team-c and an admin."""
    priced = with_prices(settings, tmp_path, TRUST_APP_SERVICE_AUTH="true")
    store_seeds(priced)
    grants = access_store(priced)
    grants.put(make_grant(READER_OID, "reader", ["team-a", "team-c"]))
    grants.put(make_grant(ADMIN_OID, "admin"))
    return priced


def error_of(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body  # an error never carries data
    assert "rows" not in response.text and "totalTokens" not in response.text
    return str(body["error"]["message"])


# -- the reader sees only its subscriptions, everywhere --------------------------------------------------
def test_reader_usage_defaults_to_its_own_subscriptions(scoped: Settings) -> None:
    body = Api(scoped).get("/api/usage", [*RANGE, ("groupBy", "subscription")], headers=READER).json()
    def mine(s: Seed) -> bool:
        return s.key[0] in ("team-a", "team-c")

    assert {r["subscriptionId"] for r in body["rows"]} == {"team-a", "team-c"}
    expected = expected_rows(("subscription",), keep=mine)
    assert body["totals"]["totalTokens"] == sum(r["totalTokens"] for r in expected.values())
    assert Decimal(body["totals"]["cost"]) == sum((seed_cost(s) for s in seeds() if mine(s)), Decimal(0))


def test_reader_reads_are_single_partition(scoped: Settings) -> None:
    api, service = recorded_api(scoped)
    assert api.get("/api/usage", RANGE, headers=READER).status_code == 200
    assert api.get("/api/chargeback", {"month": "2026-11"}, headers=READER).status_code == 200
    assert_single_partition(service.usage_filters(scoped), "team-a", "team-c")


def test_reader_naming_another_subscription_is_403_without_data(scoped: Settings) -> None:
    api = Api(scoped)
    for params in ([*RANGE, ("subscription", "team-b")], [*RANGE, ("subscription", "team-a,team-b")],
                   [*RANGE, ("subscription", "team-b"), ("format", "csv")]):
        message = error_of(api.get("/api/usage", params, headers=READER), 403)
        assert "team-b" in message and READER_OID in message
    assert "team-b" in error_of(api.get("/api/usage/team-b/summary", headers=READER), 403)
    assert "team-b" in error_of(api.get("/api/quotas/team-b", headers=READER), 403)
    assert "team-b" in error_of(api.get("/api/alerts", {"subscription": "team-b"}, headers=READER), 403)


def test_reader_csv_holds_only_its_rows(scoped: Settings) -> None:
    response = Api(scoped).get("/api/usage", [*RANGE, ("format", "csv")], headers=READER)
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows and {r["subscriptionId"] for r in rows} == {"team-a", "team-c"}
    assert "team-b" not in response.text and "synthetic-probe" not in response.text


def test_reader_summary_and_chargeback(scoped: Settings) -> None:
    api = Api(scoped)
    summary = api.get("/api/usage/team-c/summary", {"month": "2026-11"}, headers=READER).json()
    assert summary["totals"]["totalTokens"] == sum(s.prompt + s.completion for s in seeds() if s.key[0] == "team-c")
    charge = api.get("/api/chargeback", {"month": "2026-11"}, headers=READER).json()
    assert [line["subscriptionId"] for line in charge["subscriptions"]] == ["team-a", "team-c"]
    assert charge["totals"]["totalTokens"] == sum(s.prompt + s.completion for s in seeds()
                                                  if s.key[0] in ("team-a", "team-c"))
    text = api.get("/api/chargeback", {"month": "2026-11", "format": "csv"}, headers=READER).text
    assert [r["subscriptionId"] for r in csv.DictReader(io.StringIO(text))] == ["team-a", "team-c"]


def test_reader_quotas_alerts_and_probes(scoped: Settings) -> None:
    quotas = quota_store(scoped)
    for sub in ("team-a", "team-b", "*"):
        quotas.put(make_quota(sub, "month", tokens=1000))
    outbox = alert_outbox(scoped)
    for sub in ("team-a", "team-b"):
        outbox.record(Alert(sub, Period.MONTH, datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC),
                            "threshold", 50, 600, 1000, Decimal(0), None, "EUR", 0, Decimal("60.0"), NOW), NOW)
    api = Api(scoped)
    listed = api.get("/api/quotas", headers=READER).json()["quotas"]
    assert {q["subscriptionId"] for q in listed} == {"team-a", "*"}
    assert api.get("/api/quotas/*", headers=READER).status_code == 200
    alerts = api.get("/api/alerts", headers=READER).json()["alerts"]
    assert [a["subscriptionId"] for a in alerts] == ["team-a"]
    assert len(api.get("/api/alerts", headers=ADMIN).json()["alerts"]) == 2
    # probes are about the shared gateway: every authorized reader sees them
    assert api.get("/api/probes", headers=READER).status_code == 200
    me = api.get("/api/access/me", headers=READER).json()
    assert me == {"caller": f"principal:{READER_OID}", "admin": False, "allSubscriptions": False,
                  "subscriptions": ["team-a", "team-c"]}


# -- page tokens are bound to the caller's scope -----------------------------------------------------------
def test_page_token_cannot_be_replayed_by_another_caller(scoped: Settings) -> None:
    api = Api(scoped)
    params = [*RANGE, ("granularity", "hour"), ("pageSize", "4")]
    admin_token = api.get("/api/usage", params, headers=ADMIN).json()["next"]
    reader_token = api.get("/api/usage", params, headers=READER).json()["next"]
    assert "another caller" in error_of(api.get("/api/usage", [*params, ("next", admin_token)], headers=READER), 403)
    assert "another caller" in error_of(api.get("/api/usage", [*params, ("next", reader_token)]), 403)
    # the reader's own pages reassemble its full result
    rows, _ = api.all_pages(params, headers=READER)
    whole = api.get("/api/usage", [*RANGE, ("granularity", "hour"), ("pageSize", "5000")], headers=READER).json()
    assert rows == whole["rows"] and {r["subscriptionId"] for r in rows} == {"team-a", "team-c"}
    # a revoked subscription invalidates the reader's token rather than serving the old scope
    access_store(scoped).put(make_grant(READER_OID, "reader", ["team-a"]))
    error_of(api.get("/api/usage", [*params, ("next", reader_token)], headers=READER), 403)


# -- principals: who is who ------------------------------------------------------------------------------------
def test_admin_principal_sees_everything(scoped: Settings) -> None:
    api = Api(scoped)
    body = api.get("/api/usage", [*RANGE, ("groupBy", "subscription")], headers=ADMIN).json()
    assert {r["subscriptionId"] for r in body["rows"]} == {"team-a", "team-b", "team-c", "synthetic-probe"}
    assert api.get("/api/usage/team-b/summary", headers=ADMIN).status_code == 200


def test_principal_without_a_grant_is_403_everywhere(scoped: Settings) -> None:
    api = Api(scoped)
    for path in ("/api/usage", "/api/usage/team-a/summary", "/api/chargeback", "/api/quotas", "/api/alerts",
                 "/api/probes", "/api/prices", "/api/access/me"):
        message = error_of(api.get(path, headers=STRANGER), 403)
        assert "has no access" in message and "chargeback access grant" in message


def test_grant_by_upn_is_case_insensitive_and_grants_add_up(scoped: Settings) -> None:
    access_store(scoped).put(make_grant("Someone@Contoso.com", "reader", ["team-b"]))
    upn_only = principal_headers(None, "SOMEONE@contoso.com")
    api = Api(scoped)
    rows = api.get("/api/usage", [*RANGE, ("groupBy", "subscription")], headers=upn_only).json()["rows"]
    assert {r["subscriptionId"] for r in rows} == {"team-b"}
    # object id and UPN both granted: the union
    access_store(scoped).put(make_grant("22222222-0000-0000-0000-000000000000", "reader", ["team-c"]))
    both = principal_headers("22222222-0000-0000-0000-000000000000", "someone@contoso.com")
    rows = api.get("/api/usage", [*RANGE, ("groupBy", "subscription")], headers=both).json()["rows"]
    assert {r["subscriptionId"] for r in rows} == {"team-b", "team-c"}
    # the plain id/name headers alone (no X-MS-CLIENT-PRINCIPAL blob) identify the caller too
    plain = principal_headers(READER_OID, None, with_blob=False)
    assert {r["subscriptionId"] for r in api.get("/api/usage", RANGE, headers=plain).json()["rows"]} == {
        "team-a", "team-c"}


@pytest.mark.parametrize("header", ["%%%not-base64", "bm90IGpzb24=", "eyJub19jbGFpbXMiOiB0cnVlfQ=="])
def test_malformed_principal_header_is_401(scoped: Settings, header: str) -> None:
    message = error_of(Api(scoped).get("/api/usage", headers={"X-MS-CLIENT-PRINCIPAL": header}), 401)
    assert "X-MS-CLIENT-PRINCIPAL" in message


def test_wrong_key_is_401_before_any_principal(scoped: Settings) -> None:
    message = error_of(Api(scoped).get("/api/usage", headers=ADMIN, key="wrong-key-0123456789abc"), 401)
    assert "x-api-key" in message


def test_untrusted_principal_headers_are_ignored(settings: Settings, tmp_path: Path) -> None:
    """Without TRUST_APP_SERVICE_AUTH anyone could send the headers: they change nothing."""
    plain = with_prices(settings, tmp_path)
    store_seeds(plain)
    access_store(plain).put(make_grant(READER_OID, "reader", ["team-a"]))
    rows = Api(plain).get("/api/usage", [*RANGE, ("groupBy", "subscription")], headers=STRANGER).json()["rows"]
    assert len({r["subscriptionId"] for r in rows}) == 4
    functionkey = plain.with_overrides(API_AUTH="functionkey")
    rows = Api(functionkey, key="").get("/api/usage", [*RANGE, ("groupBy", "subscription")],
                                        headers=READER).json()["rows"]
    assert len({r["subscriptionId"] for r in rows}) == 4


def test_function_key_mode_with_app_service_auth_scopes_principals(scoped: Settings) -> None:
    functionkey = scoped.with_overrides(API_AUTH="functionkey")
    api = Api(functionkey, key="")  # the host checked the function key; no x-api-key
    rows = api.get("/api/usage", [*RANGE, ("groupBy", "subscription")], headers=READER).json()["rows"]
    assert {r["subscriptionId"] for r in rows} == {"team-a", "team-c"}
    error_of(api.get("/api/usage", headers=STRANGER), 403)
    assert len(api.get("/api/usage", [*RANGE, ("groupBy", "subscription")]).json()["rows"]) > 0  # key only


# -- managing grants -----------------------------------------------------------------------------------------
def test_access_admin_api(scoped: Settings) -> None:
    api = Api(scoped)
    put = api.request("PUT", "/api/access/New.User@Contoso.com", key=ADMIN_KEY,
                      json={"subscriptions": ["team-b", "team-a"]})
    assert put.status_code == 200 and put.json() == {"principal": "new.user@contoso.com", "role": "reader",
                                                      "subscriptions": ["team-a", "team-b"]}
    listed = api.get("/api/access", key=ADMIN_KEY).json()["grants"]
    assert {g["principal"] for g in listed} == {READER_OID, ADMIN_OID, "new.user@contoso.com"}
    deleted = api.request("DELETE", "/api/access/new.user@contoso.com", key=ADMIN_KEY)
    assert deleted.json() == {"principal": "new.user@contoso.com", "deleted": True}
    assert api.request("DELETE", "/api/access/new.user@contoso.com", key=ADMIN_KEY).json()["deleted"] is False
    error_of(api.get("/api/usage", headers=principal_headers(None, "new.user@contoso.com")), 403)


@pytest.mark.parametrize(("body", "parameter"), [
    ({}, "subscriptions"),
    ({"role": "reader", "subscriptions": []}, "subscriptions"),
    ({"role": "owner"}, "role"),
    ({"subscriptions": ["*"]}, "subscriptions"),
    ({"subscriptions": "team-a", "colour": "red"}, "colour"),
    ({"subscriptions": [1]}, "subscriptions"),
    ([], "body"),
])
def test_bad_grants_are_400(scoped: Settings, body: Any, parameter: str) -> None:
    response = Api(scoped).request("PUT", "/api/access/x@contoso.com", key=ADMIN_KEY, json=body)
    assert response.status_code == 400 and response.json()["error"]["parameter"] == parameter


def test_who_may_manage_grants(scoped: Settings) -> None:
    api = Api(scoped)
    body = {"role": "admin"}
    assert "admin key" in error_of(api.request("PUT", "/api/access/x@contoso.com", json=body), 401)
    assert "admin key" in error_of(api.request("PUT", "/api/access/x@contoso.com", key="", json=body), 401)
    assert "not an admin" in error_of(api.request("PUT", "/api/access/x@contoso.com", json=body,
                                                  headers=READER), 403)
    assert api.request("PUT", "/api/access/x@contoso.com", json=body, headers=ADMIN).status_code == 200
    functionkey = Api(scoped.with_overrides(API_AUTH="functionkey"), key="")
    assert functionkey.request("DELETE", "/api/access/x@contoso.com", headers=ADMIN).json()["deleted"] is True
    error_of(functionkey.request("DELETE", "/api/access/x@contoso.com", headers=READER), 403)
    error_of(functionkey.get("/api/access"), 401)


def test_cli_grant_revoke_list(scoped: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": dict(scoped._values)}))
    def run(*args: str) -> int:
        return main(["--settings", str(path), "access", *args])

    assert run("grant", "Team.Lead@Contoso.com", "--subscriptions", "team-a") == 0
    assert run("grant", "team.lead@contoso.com", "--subscriptions", "team-b,team-c") == 0
    assert access_store(scoped).get("team.lead@contoso.com") == make_grant("team.lead@contoso.com", "reader",
                                                                          ["team-a", "team-b", "team-c"])
    assert run("revoke", "team.lead@contoso.com", "--subscriptions", "team-b") == 0
    assert sorted(access_store(scoped).get("team.lead@contoso.com").subscriptions) == ["team-a", "team-c"]  # type: ignore[union-attr]
    capsys.readouterr()
    assert run("list") == 0
    listing = capsys.readouterr().out
    assert "team.lead@contoso.com" in listing and "team-a, team-c" in listing and ADMIN_OID in listing
    assert run("revoke", "team.lead@contoso.com") == 0
    assert access_store(scoped).get("team.lead@contoso.com") is None
    assert run("revoke", "team.lead@contoso.com") == 1
    assert run("grant", "someone", "--subscriptions", "*") == 2  # a bad value: usage error naming it
    assert "--subscriptions" in capsys.readouterr().err


