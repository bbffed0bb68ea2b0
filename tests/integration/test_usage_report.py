"""The usage report API (issue #6): filters, groupBy, signed paging, CSV, the month summary, the
chargeback's probe exclusion, and single-partition reads — against known rows in Azurite."""

from __future__ import annotations

import csv
import io
import re
import urllib.parse
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.tables import TableStore
from shared.composition import quota_store
from shared.core.quotas import make_quota
from shared.settings import Settings
from tests.billing_support import with_prices
from tests.usage_support import COLUMN, FIELDS, NOW, Api, api_rows, expected_rows, seed_cost, seeds, store_seeds

RANGE = [("from", "2026-11-01"), ("to", "2026-11-30")]


@pytest.fixture
def seeded(settings: Settings, tmp_path: Path) -> Settings:
    priced = with_prices(settings, tmp_path)
    store_seeds(priced)
    return priced


# -- groupBy and filters -------------------------------------------------------------------------------
@pytest.mark.parametrize("group_by", [("model",), ("subscription",), ("subscription", "deployment"),
                                      ("product", "model"), FIELDS])
@pytest.mark.parametrize("granularity", ["hour", "day", "month"])
def test_group_by_sums_match_an_independent_aggregation(seeded: Settings, group_by: tuple[str, ...],
                                                        granularity: str) -> None:
    body = Api(seeded).get("/api/usage", [*RANGE, ("granularity", granularity), ("groupBy", ",".join(group_by)),
                                          ("pageSize", "5000")]).json()
    assert body["groupBy"] == list(group_by) and body["next"] is None
    expected = expected_rows(group_by, granularity)
    assert api_rows(body["rows"], group_by) == expected
    # only the grouped key columns are in a row
    key_columns = {"subscriptionId", "productId", "model", "deployment"}
    assert {k for k in body["rows"][0] if k in key_columns} == {COLUMN[f] for f in group_by}
    assert body["totals"]["totalTokens"] == sum(r["totalTokens"] for r in expected.values())
    assert Decimal(body["totals"]["cost"]) == sum(r["cost"] for r in expected.values())
    assert body["totals"]["currency"] == "EUR" and body["rowCount"] == len(expected)


def test_group_by_repeated_equals_comma_separated_and_is_order_free(seeded: Settings) -> None:
    api = Api(seeded)
    one = api.get("/api/usage", [*RANGE, ("groupBy", "model,subscription")]).json()
    two = api.get("/api/usage", [*RANGE, ("groupBy", "subscription"), ("groupBy", "model")]).json()
    assert one["rows"] == two["rows"] and one["groupBy"] == ["subscription", "model"]


def test_filters_by_product_model_and_deployment(seeded: Settings) -> None:
    api = Api(seeded)
    body = api.get("/api/usage", [*RANGE, ("model", "alpha"), ("product", "p2"), ("groupBy", "subscription")]).json()
    expected = expected_rows(("subscription",), keep=lambda s: s.key[2] == "alpha" and s.key[1] == "p2")
    assert api_rows(body["rows"], ("subscription",)) == expected
    assert {r["subscriptionId"] for r in body["rows"]} == {"team-c"}
    body = api.get("/api/usage", [*RANGE, ("deployment", "mini,embed-dep"), ("subscription", "team-b")]).json()
    assert {(r["subscriptionId"], r["deployment"]) for r in body["rows"]} == {("team-b", "mini"),
                                                                              ("team-b", "embed-dep")}
    assert body["filters"]["deployment"] == ["mini", "embed-dep"]


@pytest.mark.parametrize(("params", "parameter"), [
    ([("groupBy", "week")], "groupBy"),
    ([("groupBy", "model,colour")], "groupBy"),
    ([("granularity", "minute")], "granularity"),
    ([("from", "2026-11-31")], "from"),
    ([("to", "soon")], "to"),
    ([("from", "2026-11-20"), ("to", "2026-11-10")], "from"),
    ([("pageSize", "0")], "pageSize"),
    ([("pageSize", "5001")], "pageSize"),
    ([("pageSize", "many")], "pageSize"),
    ([("format", "xlsx")], "format"),
])
def test_bad_parameters_are_400_naming_them(seeded: Settings, params: list[tuple[str, str]], parameter: str) -> None:
    response = Api(seeded).get("/api/usage", params)
    assert response.status_code == 400
    assert response.json()["error"]["parameter"] == parameter and set(response.json()) == {"error"}


def test_empty_range_is_an_empty_well_formed_report(seeded: Settings) -> None:
    body = Api(seeded).get("/api/usage", [("from", "2026-10-01"), ("to", "2026-10-31"), ("groupBy", "model")]).json()
    assert body["rows"] == [] and body["next"] is None and body["rowCount"] == 0
    assert body["totals"]["totalTokens"] == 0 and body["totals"]["cost"] == "0.00"
    csv_text = Api(seeded).get("/api/usage", [("from", "2026-10-01"), ("to", "2026-10-31"), ("format", "csv")]).text
    # every field quoted, the header too (CSV safe in every spreadsheet locale)
    assert csv_text.splitlines()[0].startswith('"periodStart","subscriptionId"') and len(csv_text.splitlines()) == 1


# -- paging ----------------------------------------------------------------------------------------------
def test_paging_through_every_page_reassembles_the_full_result(seeded: Settings) -> None:
    api = Api(seeded)
    params = [*RANGE, ("granularity", "hour")]
    whole = api.get("/api/usage", [*params, ("pageSize", "5000")]).json()
    rows, bodies = api.all_pages([*params, ("pageSize", "7")])
    assert len(whole["rows"]) == len(seeds()) == len(rows) and len(bodies) == -(-len(rows) // 7)
    assert rows == whole["rows"]  # same rows, same order, none repeated or skipped
    assert all(b["totals"] == whole["totals"] and b["rowCount"] == len(rows) for b in bodies)
    assert all(len(b["rows"]) == 7 for b in bodies[:-1]) and bodies[-1]["next"] is None


def test_default_page_size_is_1000_and_page_size_may_change_between_pages(seeded: Settings) -> None:
    api = Api(seeded)
    first = api.get("/api/usage", [*RANGE, ("granularity", "hour")]).json()
    assert first["pageSize"] == 1000 and first["next"] is None
    page1 = api.get("/api/usage", [*RANGE, ("granularity", "hour"), ("pageSize", "10")]).json()
    page2 = api.get("/api/usage", [*RANGE, ("granularity", "hour"), ("pageSize", "20"),
                                   ("next", page1["next"])]).json()
    assert page1["rows"] + page2["rows"] == first["rows"][:30]


def test_token_pins_the_window_when_to_defaults_to_now(seeded: Settings) -> None:
    api = Api(seeded, now=NOW)
    page1 = api.get("/api/usage", [("granularity", "hour"), ("pageSize", "5")]).json()
    assert page1["to"] == "2026-11-25T12:00:00Z"
    api.now = NOW + timedelta(minutes=40)  # the clock moves between pages
    page2 = api.get("/api/usage", [("granularity", "hour"), ("pageSize", "5"), ("next", page1["next"])]).json()
    assert page2["to"] == page1["to"] and page2["rows"][0]["periodStart"] >= page1["rows"][-1]["periodStart"]


def _first_token(api: Api, params: list[tuple[str, str]]) -> str:
    token = api.get("/api/usage", [*params, ("pageSize", "3")]).json()["next"]
    assert isinstance(token, str)
    return token


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1:]


def test_tampered_tokens_are_400(seeded: Settings) -> None:
    api = Api(seeded)
    params = [*RANGE, ("granularity", "hour")]
    token = _first_token(api, params)
    body = token.split(".")[0]
    for bad in (_flip(token, 5), _flip(token, len(body) + 3), token[:-4], body, "x.y", "not-a-token", token + "A"):
        response = api.get("/api/usage", [*params, ("pageSize", "3"), ("next", bad)])
        assert response.status_code == 400, bad
        assert response.json()["error"]["parameter"] == "next" and "rows" not in response.text


def test_token_from_another_deployment_key_is_400(seeded: Settings) -> None:
    params = [*RANGE, ("granularity", "hour")]
    token = _first_token(Api(seeded), params)
    other = seeded.with_overrides(PAGE_TOKEN_SECRET="another-secret-0123456789")
    response = Api(other).get("/api/usage", [*params, ("next", token)])
    assert response.status_code == 400 and response.json()["error"]["parameter"] == "next"


def test_token_replayed_with_other_parameters_is_400(seeded: Settings) -> None:
    api = Api(seeded)
    params = [*RANGE, ("granularity", "hour"), ("subscription", "team-a")]
    token = _first_token(api, params)
    for changed in ([*RANGE, ("granularity", "hour")],  # dropping the subscription filter would widen it
                    [*RANGE, ("granularity", "day"), ("subscription", "team-a")],
                    [*RANGE, ("granularity", "hour"), ("subscription", "team-a"), ("groupBy", "model")],
                    [("from", "2026-11-02"), ("to", "2026-11-30"), ("granularity", "hour"),
                     ("subscription", "team-a")]):
        response = api.get("/api/usage", [*changed, ("next", token)])
        assert response.status_code == 400 and response.json()["error"]["parameter"] == "next"
        assert "different query" in response.json()["error"]["message"]


def test_expired_token_is_400(seeded: Settings) -> None:
    api = Api(seeded)
    params = [*RANGE, ("granularity", "hour")]
    token = _first_token(api, params)
    api.now = NOW + timedelta(hours=2)
    response = api.get("/api/usage", [*params, ("next", token)])
    assert response.status_code == 400 and "expired" in response.json()["error"]["message"]


def test_csv_is_never_paged(seeded: Settings) -> None:
    api = Api(seeded)
    token = _first_token(api, RANGE)
    response = api.get("/api/usage", [*RANGE, ("format", "csv"), ("next", token)])
    assert response.status_code == 400 and response.json()["error"]["parameter"] == "next"


# -- CSV ---------------------------------------------------------------------------------------------------
def test_grouped_csv_parses_back_to_the_json_rows(seeded: Settings) -> None:
    api = Api(seeded)
    params = [*RANGE, ("groupBy", "subscription,model")]
    response = api.get("/api/usage", [*params, ("format", "csv"), ("pageSize", "2")])
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="usage-20261101-20261201-day.csv"' in response.headers["content-disposition"]
    parsed = list(csv.DictReader(io.StringIO(response.text)))
    assert list(parsed[0])[:3] == ["periodStart", "subscriptionId", "model"] and "deployment" not in parsed[0]
    rows, _ = api.all_pages([*params, ("pageSize", "5")])
    assert len(parsed) == len(rows)  # CSV ignores pageSize: every row
    for record, row in zip(parsed, rows, strict=True):
        assert record["subscriptionId"] == row["subscriptionId"] and record["model"] == row["model"]
        assert int(record["totalTokens"]) == row["totalTokens"] and Decimal(record["cost"]) == Decimal(row["cost"])


# -- single-partition reads --------------------------------------------------------------------------------
class RecordingService:
    """A TableServiceClient that records the ``$filter`` of every request it sends, as sent."""

    def __init__(self, connection_string: str) -> None:
        from azure.data.tables import TableServiceClient

        self.log: list[tuple[str, str | None]] = []  # (table, decoded filter or None for a listing)
        self._inner = TableServiceClient.from_connection_string(connection_string, raw_request_hook=self._record)

    def _record(self, request: Any) -> None:
        url = urllib.parse.urlsplit(request.http_request.url)
        table = url.path.rsplit("/", 1)[-1]
        if request.http_request.method == "GET" and table.endswith("()"):
            query = urllib.parse.parse_qs(url.query)
            self.log.append((table[:-2], query["$filter"][0] if "$filter" in query else None))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def usage_filters(self, settings: Settings) -> list[str | None]:
        return [f for table, f in self.log if table == f"{settings.table_prefix}usage"]


def recorded_api(settings: Settings) -> tuple[Api, RecordingService]:
    assert settings.tables_connection_string
    service = RecordingService(settings.tables_connection_string)
    return Api(settings, store_factory=lambda s: TableStore(service, s.table_prefix, "recorded")), service


SINGLE_PARTITION = re.compile(r"^PartitionKey eq '([^']*)' and RowKey ge '([^']*)' and RowKey lt '([^']*)'$")


def assert_single_partition(filters: list[str | None], *partitions: str) -> None:
    assert filters, "no usage query was made"
    for query_filter in filters:
        assert query_filter is not None, "a full-table listing of the usage table"
        match = SINGLE_PARTITION.match(query_filter)
        assert match, query_filter
        assert match.group(1) in partitions, query_filter


def test_single_subscription_reads_are_single_partition_range_queries(seeded: Settings) -> None:
    api, service = recorded_api(seeded)
    for granularity in ("hour", "day", "month"):  # month rows are priced from the same partition's day rows
        params = [*RANGE, ("subscription", "team-a"), ("granularity", granularity)]
        assert api.get("/api/usage", params).status_code == 200
    assert api.get("/api/usage", [*RANGE, ("subscription", "team-a"), ("format", "csv")]).status_code == 200
    assert api.get("/api/usage/team-a/summary", {"month": "2026-11"}).status_code == 200
    filters = service.usage_filters(seeded)
    assert_single_partition(filters, "team-a")
    ranges = {match.group(2)[:2] for f in filters if f and (match := SINGLE_PARTITION.match(f))}
    assert ranges == {"h|", "d|", "m|"}  # period RowKey ranges


def test_all_subscriptions_read_one_rowkey_range(seeded: Settings) -> None:
    api, service = recorded_api(seeded)
    assert api.get("/api/usage", RANGE).status_code == 200
    assert service.usage_filters(seeded) == ["RowKey ge 'd|2026-11-01' and RowKey lt 'd|2026-12-01'"]


# -- summary ------------------------------------------------------------------------------------------------
def test_month_summary(seeded: Settings) -> None:
    quotas = quota_store(seeded)
    quotas.put(make_quota("team-a", "month", tokens=200_000))
    quotas.put(make_quota("*", "day", cost="0.05"))
    response = Api(seeded).get("/api/usage/team-a/summary", {"month": "2026-11"})
    assert response.status_code == 200
    body = response.json()
    mine = [s for s in seeds() if s.key[0] == "team-a"]
    tokens = sum(s.prompt + s.completion for s in mine)
    assert body["totals"]["totalTokens"] == tokens and body["totals"]["requests"] == sum(s.requests for s in mine)
    assert Decimal(body["totals"]["cost"]) == sum(seed_cost(s) for s in mine) and body["currency"] == "EUR"
    assert body["unmetered"]["requests"] == sum(s.unmetered for s in mine) == 2
    month = body["quota"]["month"]
    assert month["source"] == "own" and month["tokens"] == 200_000 and month["usedTokens"] == tokens
    assert month["usedPercent"] == float((Decimal(tokens) * 100 / 200_000).quantize(Decimal("0.1")))
    assert month["thresholdsReached"] == [t for t in (50, 80, 100) if tokens * 100 >= t * 200_000]
    day = body["quota"]["day"]  # today (2026-11-25) has no rows: 0 % of the default day quota
    assert day["source"] == "default" and day["usedPercent"] == 0.0 and day["cost"] == "0.05"
    by_model = {m: sum(s.prompt + s.completion for s in mine if s.key[2] == m) for m in ("alpha", "alpha-mini")}
    assert [(m["model"], m["totalTokens"]) for m in body["topModels"]] == sorted(by_model.items(),
                                                                                 key=lambda kv: -kv[1])
    assert sum(m["totalTokens"] for m in body["topModels"]) == tokens
    assert [d["day"] for d in body["days"]][:3] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert len(body["days"]) == 25 and sum(d["totalTokens"] for d in body["days"]) == tokens
    assert body["days"][2]["totalTokens"] == sum(s.prompt + s.completion for s in mine if s.at.day == 3)


def test_summary_of_a_past_month_without_quota_and_bad_month(seeded: Settings) -> None:
    api = Api(seeded)
    body = api.get("/api/usage/team-b/summary", {"month": "2026-10"}).json()
    assert body["totals"]["totalTokens"] == 0 and body["quota"] == {"month": None, "day": None}
    assert len(body["days"]) == 31 and body["topModels"] == []
    for bad in ("2026-13", "November", "2026-1"):
        response = api.get("/api/usage/team-b/summary", {"month": bad})
        assert response.status_code == 400 and response.json()["error"]["parameter"] == "month"


# -- chargeback ------------------------------------------------------------------------------------------------
def test_chargeback_leaves_the_probe_out_and_its_csv_matches(seeded: Settings) -> None:
    api = Api(seeded)
    body = api.get("/api/chargeback", {"month": "2026-11"}).json()
    assert [line["subscriptionId"] for line in body["subscriptions"]] == ["team-a", "team-b", "team-c"]
    charged = [s for s in seeds() if s.key[0] != "synthetic-probe"]
    assert body["totals"]["totalTokens"] == sum(s.prompt + s.completion for s in charged)
    assert Decimal(body["totals"]["cost"]) == sum(seed_cost(s) for s in charged)
    response = api.get("/api/chargeback", {"month": "2026-11", "format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="chargeback-2026-11.csv"' in response.headers["content-disposition"]
    lines = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["subscriptionId"], int(r["totalTokens"]), Decimal(r["cost"])) for r in lines] == [
        (x["subscriptionId"], x["totalTokens"], Decimal(x["cost"])) for x in body["subscriptions"]]
    assert "synthetic-probe" not in response.text
