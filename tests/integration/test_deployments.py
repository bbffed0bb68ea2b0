"""The deployment catalog (history, case-insensitive names, SKU kinds) and its Table Storage rows."""

from __future__ import annotations

from datetime import timedelta

from shared.adapters.deployment_tables import DeploymentTableStore
from shared.composition import feature_tables
from shared.core.deployments import (
    DeploymentCatalog,
    Source,
)
from shared.settings import Settings
from tests.unit.test_deployment_history import T0, record


def test_table_store_round_trip(settings: Settings) -> None:
    store = DeploymentTableStore(feature_tables(settings))
    versions = [record(ptus=100), record(ptus=150, at=T0 + timedelta(hours=3, microseconds=7)),
                record("Chat/Team#1?", ptus=None, sku="GlobalStandard", source=Source.MANUAL),
                record(ptus=150, at=T0 + timedelta(days=1), deleted=True)]
    for version in versions:
        store.add(version)
    assert store.history("GPT-4O-PTU") == [versions[0], versions[1], versions[3]]
    assert store.history("chat/team#1?") == [versions[2]]
    assert sorted(store.all(), key=lambda v: (v.key, v.effective_from)) == sorted(
        versions, key=lambda v: (v.key, v.effective_from))
    catalog = DeploymentCatalog(store.all())
    assert catalog.in_force("gpt-4o-ptu", T0 + timedelta(days=2)) is None
