"""Deployment sync through the real ``azure-mgmt-cognitiveservices`` client against a loopback ARM.

The loopback server speaks https with a self-signed certificate made here, and the client is
given that certificate as ``connection_verify``: azure-core's bearer-token policy refuses plain
http, and this keeps the production policy (and its https check) exactly as in Azure. The
credential is a static fake, so nothing ever asks the instance-metadata address for a token.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.adapters.arm_deployments import ArmDeploymentSource
from shared.adapters.deployment_tables import MemoryDeploymentStore
from shared.core.deployments import AccountIdError, DeploymentCatalog
from shared.services.deployment_sync import DeploymentSyncService
from tests.fakes import FakeClock, FakeCredential
from tests.loopback_arm import serve_arm

SUB = "00000000-0000-0000-0000-000000000001"
ACCOUNT_ID = f"/subscriptions/{SUB}/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/aoai-swc"
OTHER_ID = f"/subscriptions/{SUB}/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/aoai-missing"
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def deployment_json(name: str, sku: str, capacity: int, model: str = "gpt-4o",
                    version: str = "2024-08-06") -> dict[str, Any]:
    return {
        "id": f"{ACCOUNT_ID}/deployments/{name}",
        "name": name,
        "type": "Microsoft.CognitiveServices/accounts/deployments",
        "sku": {"name": sku, "capacity": capacity},
        "properties": {
            "model": {"format": "OpenAI", "name": model, "version": version},
            "provisioningState": "Succeeded",
            "raiPolicyName": "Microsoft.DefaultV2",
            "versionUpgradeOption": "OnceNewDefaultVersionAvailable",
        },
    }


@dataclass
class FakeArm:
    """What the loopback ARM serves: one account, its deployments on two pages."""

    pages: list[list[dict[str, Any]]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path?query, Authorization)
    base: str = ""

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        account_path = urlsplit(ACCOUNT_ID).path
        if path.lower() == account_path.lower():
            return 200, {"id": ACCOUNT_ID, "name": "aoai-swc", "type": "Microsoft.CognitiveServices/accounts",
                         "location": "swedencentral", "kind": "OpenAI", "sku": {"name": "S0"},
                         "properties": {"provisioningState": "Succeeded"}}
        if path.lower() == f"{account_path}/deployments".lower():
            page = int(query.get("$skipToken", ["0"])[0])
            next_link = (f"{self.base}{account_path}/deployments?api-version=2025-09-01&$skipToken={page + 1}"
                         if page + 1 < len(self.pages) else None)
            return 200, {"value": self.pages[page] if self.pages else [], "nextLink": next_link}
        return 404, {"error": {"code": "ResourceNotFound", "message": f"{path} not found"}}


@pytest.fixture
def arm(tmp_path: Path) -> Iterator[tuple[FakeArm, Path]]:
    fake = FakeArm()
    with serve_arm(fake, tmp_path) as cert:
        yield fake, cert


def service(fake: FakeArm, cert: Path, store: MemoryDeploymentStore, clock: FakeClock,
            credential: FakeCredential | None = None) -> DeploymentSyncService:
    source = ArmDeploymentSource(credential or FakeCredential("fake"), fake.base, connection_verify=str(cert),
                                 retry_total=0)
    return DeploymentSyncService(source, store, clock)


def test_sync_reads_every_page_and_is_idempotent(arm: tuple[FakeArm, Path]) -> None:
    fake, cert = arm
    fake.pages = [[deployment_json("gpt-4o", "GlobalStandard", 50)],
                  [deployment_json("GPT-4o-PTU", "DataZoneProvisionedManaged", 100),
                   deployment_json("gpt-5-batch", "GlobalBatch", 1000, "gpt-5", "2025-08-07")]]
    store, clock, credential = MemoryDeploymentStore(), FakeClock(T0), FakeCredential("fake")

    report = service(fake, cert, store, clock, credential).sync([ACCOUNT_ID])

    assert report.failed_accounts == {} and report.conflicts == {} and report.unknown_skus == ()
    assert len(report.added) == 3
    catalog = DeploymentCatalog(store.all())
    standard = catalog.in_force("GPT-4O", T0)
    assert standard is not None
    assert (standard.name, standard.model, standard.model_version, standard.sku, standard.region, standard.ptus,
            standard.account) == ("gpt-4o", "gpt-4o", "2024-08-06", "GlobalStandard", "swedencentral", None,
                                  ACCOUNT_ID)  # standard capacity (TPM in thousands) is not PTU
    ptu = catalog.in_force("gpt-4o-ptu", T0)
    assert ptu is not None and ptu.ptus == 100 and ptu.provisioned and ptu.effective_from == T0
    batch = catalog.in_force("gpt-5-batch", T0)
    assert batch is not None and batch.ptus is None and not batch.provisioned
    assert catalog.in_force("gpt-4o", T0 - dt.timedelta(seconds=1)) is None

    # the real client followed nextLink, sent the fake bearer token, asked for an ARM token
    paths = [path for path, _ in fake.requests]
    assert any("$skipToken=1" in p for p in paths) and all(auth == "Bearer fake" for _, auth in fake.requests)
    assert credential.scopes and credential.scopes[0] == ("https://management.azure.com/.default",)

    clock.now = T0 + dt.timedelta(hours=1)
    again = service(fake, cert, store, clock).sync([ACCOUNT_ID])
    assert again.added == () and again.unchanged == 3 and len(store.all()) == 3


def test_sku_or_ptu_change_is_a_new_version_from_sync_time(arm: tuple[FakeArm, Path]) -> None:
    fake, cert = arm
    fake.pages = [[deployment_json("chat", "GlobalStandard", 50), deployment_json("ptu", "ProvisionedManaged", 50)]]
    store, clock = MemoryDeploymentStore(), FakeClock(T0)
    service(fake, cert, store, clock).sync([ACCOUNT_ID])

    changed_at = T0 + dt.timedelta(days=3, minutes=17)
    clock.now = changed_at
    fake.pages = [[deployment_json("chat", "GlobalProvisionedManaged", 15),
                   deployment_json("ptu", "ProvisionedManaged", 75)]]
    report = service(fake, cert, store, clock).sync([ACCOUNT_ID])

    assert sorted(r.name for r in report.added) == ["chat", "ptu"]
    catalog = DeploymentCatalog(store.all())
    before, after = catalog.in_force("chat", changed_at - dt.timedelta(microseconds=1)), catalog.in_force("chat",
                                                                                                          changed_at)
    assert before is not None and before.sku == "GlobalStandard" and before.ptus is None
    assert after is not None and after.sku == "GlobalProvisionedManaged" and after.ptus == 15
    assert after.effective_from == changed_at
    assert [v.ptus for v in catalog.history("ptu")] == [50, 75]


def test_deployment_gone_from_its_account_is_recorded_deleted(arm: tuple[FakeArm, Path]) -> None:
    fake, cert = arm
    fake.pages = [[deployment_json("keep", "GlobalStandard", 10), deployment_json("ptu", "ProvisionedManaged", 50)]]
    store, clock = MemoryDeploymentStore(), FakeClock(T0)
    service(fake, cert, store, clock).sync([ACCOUNT_ID])

    clock.now = T0 + dt.timedelta(hours=5)
    fake.pages = [[deployment_json("keep", "GlobalStandard", 10)]]
    report = service(fake, cert, store, clock).sync([ACCOUNT_ID])

    assert [(r.name, r.deleted) for r in report.added] == [("ptu", True)]
    catalog = DeploymentCatalog(store.all())
    assert catalog.in_force("ptu", clock.now) is None
    assert catalog.in_force("ptu", clock.now - dt.timedelta(seconds=1)) is not None
    assert service(fake, cert, store, clock).sync([ACCOUNT_ID]).added == ()


def test_unreachable_account_is_reported_and_deletes_nothing(arm: tuple[FakeArm, Path]) -> None:
    fake, cert = arm
    fake.pages = [[deployment_json("ptu", "ProvisionedManaged", 50)]]
    store, clock = MemoryDeploymentStore(), FakeClock(T0)
    service(fake, cert, store, clock).sync([ACCOUNT_ID])

    report = service(fake, cert, store, clock).sync([OTHER_ID, ACCOUNT_ID])

    assert list(report.failed_accounts) == [OTHER_ID] and "HTTP 404" in report.failed_accounts[OTHER_ID]
    assert report.added == () and len(store.all()) == 1


def test_unknown_sku_is_kept_and_reported(arm: tuple[FakeArm, Path]) -> None:
    fake, cert = arm
    fake.pages = [[deployment_json("odd", "FancyNewProvisioned", 30)]]
    report = service(fake, cert, MemoryDeploymentStore(), FakeClock(T0)).sync([ACCOUNT_ID])

    (unknown,) = report.unknown_skus
    assert unknown.sku == "FancyNewProvisioned" and unknown.ptus is None and unknown.kind is None
    assert report.added == (unknown,)


def test_malformed_account_id_fails_before_any_call(arm: tuple[FakeArm, Path]) -> None:
    fake, cert = arm
    bad = f"/subscriptions/{SUB}/resourceGroups/rg-ai/providers/Microsoft.Storage/storageAccounts/x"
    with pytest.raises(AccountIdError, match=re.escape(repr(bad))):
        service(fake, cert, MemoryDeploymentStore(), FakeClock(T0)).sync([ACCOUNT_ID, bad])
    assert fake.requests == []
