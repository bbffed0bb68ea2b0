"""Keeping the deployment catalog in step with ARM.

Each run lists the deployments of every configured Azure OpenAI account and stores a new version
for each deployment whose terms changed, effective from the run's moment (the catalog learns of a
change when a sync sees it, so a change is dated at most one sync interval late; a manual record
can date it precisely). A deployment that an account no longer lists gets a deletion version, so
a removed PTU deployment stops costing. Re-running with nothing changed stores nothing.

Not guessed, reported instead:
- an account ARM could not list (its deployments keep their last known versions, none deleted);
- a name listed by two accounts: the logs name only the deployment, so usage could not be told
  apart; neither is applied until one is renamed or a manual record settles it;
- an SKU the catalog does not know (kept as ARM spelled it, no PTU count).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from shared.core.deployments import (
    AccountRef,
    Deployment,
    DeploymentCatalog,
    DeploymentRepository,
    Source,
    parse_account_id,
)
from shared.errors import ChargebackError

log = logging.getLogger(__name__)


class DeploymentSource(Protocol):
    def deployments(self, account: AccountRef, observed_at: datetime) -> list[Deployment]: ...


@dataclass(frozen=True)
class SyncReport:
    added: tuple[Deployment, ...] = ()
    unchanged: int = 0
    failed_accounts: dict[str, str] = field(default_factory=dict)  # account id -> error message
    conflicts: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> accounts listing it
    unknown_skus: tuple[Deployment, ...] = ()


def _now() -> datetime:
    return datetime.now(UTC)


class DeploymentSyncService:
    def __init__(self, source: DeploymentSource, repository: DeploymentRepository,
                 clock: Callable[[], datetime] = _now) -> None:
        self._source = source
        self._repository = repository
        self._clock = clock

    def sync(self, account_ids: Sequence[str]) -> SyncReport:
        """List every account in ``account_ids`` (ARM resource ids) and store what changed.

        Every id is parsed before any call, so a malformed setting fails the run naming the id.
        """
        accounts = list({ref.resource_id.lower(): ref for ref in map(parse_account_id, account_ids)}.values())
        now = self._clock()
        catalog = DeploymentCatalog(self._repository.all())

        listed: dict[str, list[Deployment]] = {}
        failed: dict[str, str] = {}
        reached: set[str] = set()
        for account in accounts:
            try:
                records = self._source.deployments(account, now)
            except ChargebackError as exc:
                log.error("deployment sync: %s", exc)
                failed[account.resource_id] = str(exc)
                continue
            reached.add(account.resource_id.lower())
            for record in records:
                listed.setdefault(record.key, []).append(record)

        conflicts = {records[0].name: tuple(sorted({r.account for r in records}))
                     for records in listed.values() if len({r.account.lower() for r in records}) > 1}
        unique = [records[0] for records in listed.values() if records[0].name not in conflicts]
        gone = [replace(latest, effective_from=now, source=Source.ARM, deleted=True)
                for latest in catalog.latest()
                if not latest.deleted and latest.source is Source.ARM and latest.key not in listed
                and latest.account.lower() in reached]

        added = []
        for record in [*unique, *gone]:
            if catalog.apply(record):
                self._repository.add(record)
                added.append(record)
        for name, owners in conflicts.items():
            log.error("deployment sync: deployment %r is listed by several accounts %s; not applied", name, owners)
        unknown = tuple(r for r in unique if r.kind is None)
        for record in unknown:
            log.warning("deployment sync: deployment %r has SKU %r, which is not costed", record.name, record.sku)
        return SyncReport(tuple(added), len(unique) - sum(1 for r in added if not r.deleted), failed, conflicts,
                          unknown)
