"""Deployment SKUs, their history in force at a moment, version keys and the in-memory store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.deployment_tables import MemoryDeploymentStore, version_key
from shared.core.deployments import (
    AccountIdError,
    BillingMode,
    Deployment,
    DeploymentCatalog,
    DeploymentType,
    Source,
    parse_account_id,
    sku_kind,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


ACCOUNT = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/aoai"


def record(name: str = "gpt-4o-ptu", ptus: int | None = 100, at: datetime = T0,
           sku: str = "GlobalProvisionedManaged", **changes: object) -> Deployment:
    base = Deployment(name, ACCOUNT, "gpt-4o", "2024-08-06", sku, "swedencentral", ptus, at)
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("sku", "kind"), [
    ("GlobalStandard", (DeploymentType.GLOBAL, BillingMode.STANDARD)),
    ("DataZoneStandard", (DeploymentType.DATAZONE, BillingMode.STANDARD)),
    ("Standard", (DeploymentType.REGIONAL, BillingMode.STANDARD)),
    ("GlobalBatch", (DeploymentType.GLOBAL, BillingMode.BATCH)),
    ("DataZoneBatch", (DeploymentType.DATAZONE, BillingMode.BATCH)),
    ("globalprovisionedmanaged", (DeploymentType.GLOBAL, BillingMode.PROVISIONED)),
    ("DataZoneProvisionedManaged", (DeploymentType.DATAZONE, BillingMode.PROVISIONED)),
    ("ProvisionedManaged", (DeploymentType.REGIONAL, BillingMode.PROVISIONED))])
def test_sku_kinds(sku: str, kind: tuple[DeploymentType, BillingMode]) -> None:
    found = sku_kind(sku)
    assert found is not None and (found.deployment_type, found.mode) == kind


def test_unknown_sku_is_kept_and_reported() -> None:
    catalog = DeploymentCatalog([record(sku="DeveloperTier", ptus=None), record("other")])
    assert [d.sku for d in catalog.unknown_skus()] == ["DeveloperTier"]
    assert sku_kind("DeveloperTier") is None
    in_force = catalog.in_force("gpt-4o-ptu", T0)
    assert in_force is not None and not in_force.provisioned


def test_history_in_force_and_case_insensitive_names() -> None:
    catalog = DeploymentCatalog()
    assert catalog.apply(record(ptus=100))
    assert not catalog.apply(record("GPT-4O-PTU", ptus=100, at=T0 + timedelta(hours=1)))  # same terms
    assert not catalog.apply(record(ptus=100, source=Source.MANUAL, at=T0 + timedelta(hours=2)))
    assert catalog.apply(record(ptus=200, at=T0 + timedelta(days=1)))
    assert not catalog.apply(record(ptus=200, at=T0 + timedelta(days=1)))  # idempotent

    assert catalog.in_force("gpt-4o-ptu", T0 - timedelta(microseconds=1)) is None
    first = catalog.in_force("Gpt-4o-Ptu", T0 + timedelta(hours=23))
    second = catalog.in_force("gpt-4o-ptu", T0 + timedelta(days=1))
    assert first is not None and first.ptus == 100
    assert second is not None and second.ptus == 200
    assert [v.ptus for v in catalog.history("GPT-4O-PTU")] == [100, 200]


def test_same_moment_other_terms_is_a_correction_and_backdating_inserts() -> None:
    catalog = DeploymentCatalog([record(ptus=100), record(ptus=200, at=T0 + timedelta(days=2))])
    assert catalog.apply(record(ptus=150, at=T0 + timedelta(days=2), source=Source.MANUAL))
    assert catalog.apply(record(ptus=120, at=T0 + timedelta(days=1), source=Source.MANUAL))
    assert [(v.ptus, v.effective_from - T0) for v in catalog.history("gpt-4o-ptu")] == [
        (100, timedelta(0)), (120, timedelta(days=1)), (150, timedelta(days=2))]


def test_changes_in_gives_segments_and_skips_deleted_time() -> None:
    catalog = DeploymentCatalog([record(ptus=10, at=T0 - timedelta(days=1)),
                                 record(ptus=20, at=T0 + timedelta(minutes=30)),
                                 record(ptus=20, at=T0 + timedelta(minutes=45), deleted=True)])
    segments = catalog.changes_in("GPT-4O-PTU", T0, T0 + timedelta(hours=1))
    assert [(lower - T0, upper - T0, v.ptus) for lower, upper, v in segments] == [
        (timedelta(0), timedelta(minutes=30), 10), (timedelta(minutes=30), timedelta(minutes=45), 20)]
    assert catalog.in_force("gpt-4o-ptu", T0 + timedelta(hours=1)) is None
    assert not DeploymentCatalog().apply(record(deleted=True))  # deleting the unknown records nothing


def test_effective_from_must_be_utc() -> None:
    with pytest.raises(ValueError, match="UTC"):
        record(at=datetime(2026, 11, 2, 9, 0))


def test_parse_account_id_strictly() -> None:
    ref = parse_account_id(ACCOUNT.replace("resourceGroups", "resourcegroups") + "/")
    assert (ref.subscription_id, ref.resource_group, ref.name) == ("s1", "rg", "aoai")
    for bad in ("aoai", f"{ACCOUNT}/deployments/x", ACCOUNT.replace("Microsoft.CognitiveServices", "Microsoft.Web"),
                "/subscriptions//resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/aoai"):
        with pytest.raises(AccountIdError, match="not an Azure OpenAI account resource id") as caught:
            parse_account_id(bad)
        assert repr(bad) in str(caught.value)


def test_version_keys_sort_in_time_order() -> None:
    moments = [T0, T0 + timedelta(microseconds=1), T0 + timedelta(days=400), T0 - timedelta(days=30)]
    assert sorted(moments, key=version_key) == sorted(moments)


def test_memory_store_keeps_one_row_per_name_and_moment() -> None:
    store = MemoryDeploymentStore()
    store.add(record(ptus=1))
    store.add(record("GPT-4O-PTU", ptus=2))  # same partition and row: replaced
    store.add(record(ptus=3, at=T0 + timedelta(hours=1)))
    assert [v.ptus for v in store.history("gpt-4o-ptu")] == [2, 3]
