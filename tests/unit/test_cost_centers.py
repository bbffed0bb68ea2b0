"""The cost-center directory's pure rules: validation, the ARM/manual merge, lookups, grouping, APIM ids."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from shared.adapters.subscription_tables import MemorySubscriptionStore
from shared.core.apim_ids import ScopeKind, owner_user_id, parse_apim_service_id, scope_kind, service_relative
from shared.core.cost_centers import (
    MAX_TAGS,
    UNASSIGNED,
    ArmSubscription,
    SubscriptionDirectory,
    SubscriptionInfo,
    apply_arm,
    apply_manual,
    group_by_cost_center,
    valid_cost_center,
    valid_tags,
)
from shared.core.deployments import Source
from shared.errors import InvalidRequestError
from shared.services.subscription_info import list_subscriptions, parse_tag_arguments, set_subscription_info

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
SERVICE = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-apim"
           "/providers/Microsoft.ApiManagement/service/apim-ai")


def arm(sid: str = "team-a", name: str = "Team A", owner: str = "1", scope: str = "/products/p",
        state: str = "active") -> ArmSubscription:
    return ArmSubscription(sid, name, owner, scope, state)


@pytest.mark.parametrize(("text", "problem"), [
    ("x" * 129, "at most 128"),
    ("CC\t1", "printable"),
    ("CC\n1", "printable"),
    ("CC\u202e1", "printable"),  # a bidi override is a format character, not printable
    ("CC\x001", "printable"),
    ("CC-1\n", "printable"),  # a trailing line break is refused, not silently dropped
])
def test_a_bad_cost_center_is_refused_naming_the_field(text: str, problem: str) -> None:
    with pytest.raises(InvalidRequestError, match=problem) as caught:
        valid_cost_center(text)
    assert caught.value.parameter == "cost_center"


def test_cost_center_text_is_trimmed_and_may_be_any_printable_script() -> None:
    assert valid_cost_center("  Kostenstelle 4711-Ü 名前 ") == "Kostenstelle 4711-Ü 名前"
    assert valid_cost_center("x" * 128) == "x" * 128


@pytest.mark.parametrize(("tags", "problem"), [
    ({f"k{i}": "v" for i in range(MAX_TAGS + 1)}, "at most 50 tags"),
    ({"": "v"}, "must not be empty"),
    ({"k" * 257: "v"}, "at most 256"),
    ({"k": "v" * 257}, "at most 256"),
    ({"k\n": "v"}, "control characters"),
    ({"k": "line\nbreak"}, "control characters"),
    ({"k": "\x1b[31m"}, "control characters"),
    ({"k": 1}, "must be text"),
    ({"k": "a", " k ": "b"}, "given twice"),
])
def test_bad_tags_are_refused_naming_the_field(tags: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidRequestError, match=problem) as caught:
        valid_tags(tags)  # type: ignore[arg-type]
    assert caught.value.parameter == "tags"


def test_tags_at_the_limits_pass_and_emoji_sequences_are_not_control_characters() -> None:
    tags = {f"{i:02d}" + "k" * 254: "v" * 256 for i in range(MAX_TAGS)}
    assert valid_tags(tags) == tags
    assert valid_tags({"team": "\U0001f468\u200d\U0001f469\u200d\U0001f467", "empty": ""}) == {
        "team": "\U0001f468\u200d\U0001f469\u200d\U0001f467", "empty": ""}


def test_arm_fills_its_fields_and_never_touches_what_a_person_set() -> None:
    first = apply_arm(None, arm(), T0)
    assert (first.source, first.display_name, first.owner, first.updated_at) == (Source.ARM, "Team A", "1", T0)
    assert apply_arm(first, arm(), T0 + dt.timedelta(hours=1)) is first  # nothing new

    later = T0 + dt.timedelta(hours=2)
    manual = apply_manual(first, "team-a", later, cost_center="CC-1", business_unit="BU", owner="a@b.example",
                          tags={"env": "prod"})
    synced = apply_arm(manual, arm(name="Team A (renamed)", owner="2", state="suspended"), later)
    assert (synced.display_name, synced.state, synced.arm_owner) == ("Team A (renamed)", "suspended", "2")
    assert (synced.cost_center, synced.business_unit, synced.owner, synced.tags) == (
        "CC-1", "BU", "a@b.example", {"env": "prod"})


def test_manual_fields_left_out_stay_and_empty_text_clears() -> None:
    record = apply_manual(None, "Team-A", T0, cost_center="CC-1", tags={"a": "1"})
    assert (record.source, record.subscription_id, record.owner, record.updated_at) == (Source.MANUAL, "Team-A", "", T0)
    record = apply_manual(record, "Team-A", T0, business_unit="BU")
    assert (record.cost_center, record.tags, record.business_unit) == ("CC-1", {"a": "1"}, "BU")
    record = apply_manual(record, "Team-A", T0, cost_center="", tags={})
    assert (record.cost_center, record.effective_cost_center, record.tags) == ("", UNASSIGNED, {})
    with pytest.raises(InvalidRequestError, match="nothing to set"):
        apply_manual(record, "Team-A", T0)


def test_a_bad_value_changes_nothing_even_next_to_good_ones() -> None:
    store = MemorySubscriptionStore()
    set_subscription_info(store, "team-a", cost_center="CC-1", now=T0)
    with pytest.raises(InvalidRequestError) as caught:
        set_subscription_info(store, "team-a", cost_center="CC-2", tags={"k": "bad\nvalue"}, now=T0)
    assert caught.value.parameter == "tags"
    stored = store.get("team-a")
    assert stored is not None and stored.cost_center == "CC-1"


@pytest.mark.parametrize("sid", ["", "a\nb", "x" * 257])
def test_a_bad_subscription_id_is_refused_naming_it(sid: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        set_subscription_info(MemorySubscriptionStore(), sid, cost_center="CC", now=T0)
    assert caught.value.parameter == "subscription_id"


def test_moments_must_be_utc() -> None:
    with pytest.raises(ValueError, match="UTC"):
        apply_manual(None, "a", dt.datetime(2026, 1, 1), cost_center="x")  # naive on purpose
    with pytest.raises(ValueError, match="UTC"):
        apply_arm(None, arm(), dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))))


@dataclass(frozen=True)
class Line:
    subscription_id: str
    tokens: int


def test_usage_lines_group_by_cost_center_case_insensitively_with_unassigned_last() -> None:
    directory = SubscriptionDirectory([
        apply_manual(None, "Team-A", T0, cost_center="CC-2"),
        apply_manual(None, "team-b", T0, cost_center="CC-1"),
        apply_manual(None, "team-c", T0, business_unit="BU-only"),
    ])
    lines = [Line("team-a", 1), Line("unattributed", 2), Line("TEAM-B", 3), Line("team-c", 4), Line("Team-A", 5)]
    grouped = group_by_cost_center(lines, directory.cost_center_of)
    assert list(grouped) == ["CC-1", "CC-2", UNASSIGNED]
    assert grouped["CC-2"] == [Line("team-a", 1), Line("Team-A", 5)]
    assert grouped[UNASSIGNED] == [Line("unattributed", 2), Line("team-c", 4)]
    assert directory.business_unit_of("team-c") == "BU-only" and directory.business_unit_of("x") == UNASSIGNED

    infos: list[SubscriptionInfo] = [r for r in (directory.get(s) for s in ("team-a", "team-b")) if r]
    assert {name: [r.subscription_id for r in rows] for name, rows in group_by_cost_center(
        infos, directory.cost_center_of).items()} == {"CC-1": ["team-b"], "CC-2": ["Team-A"]}


def test_list_filters_by_effective_cost_center() -> None:
    store = MemorySubscriptionStore()
    set_subscription_info(store, "b", cost_center="CC-1", now=T0)
    set_subscription_info(store, "a", business_unit="BU", now=T0)
    assert [r.subscription_id for r in list_subscriptions(store)] == ["a", "b"]
    assert [r.subscription_id for r in list_subscriptions(store, cost_center=UNASSIGNED)] == ["a"]


def test_tag_arguments_split_at_the_first_equals_sign() -> None:
    assert parse_tag_arguments(["team=search", "expr=a=b", "empty="]) == {"team": "search", "expr": "a=b",
                                                                           "empty": ""}
    for bad, problem in ((["novalue"], "NAME=VALUE"), (["=v"], "NAME=VALUE"), (["k=1", "k=2"], "twice"),
                         (["k=a\tb"], "control characters")):
        with pytest.raises(InvalidRequestError, match=problem) as caught:
            parse_tag_arguments(bad)
        assert caught.value.parameter == "--tag"


def test_service_ids_parse_case_insensitively_and_relative_paths_are_read_alike() -> None:
    ref = parse_apim_service_id(f"  {SERVICE.upper().replace('APIM-AI', 'apim-ai')}/ ")
    assert (ref.resource_group, ref.name) == ("RG-APIM", "apim-ai")
    assert service_relative(f"{SERVICE}/products/starter") == "/products/starter"
    assert service_relative("/products/starter") == "/products/starter"
    assert owner_user_id(f"{SERVICE}/users/1") == owner_user_id("/users/1") == "1"
    assert owner_user_id(None) == "" and owner_user_id("/groups/x") == "/groups/x"
    assert [scope_kind(s) for s in ("/products/p", f"{SERVICE}/apis", "/apis/echo", "/weird/a/b")] == [
        ScopeKind.PRODUCT, ScopeKind.ALL, ScopeKind.API, ScopeKind.OTHER]
