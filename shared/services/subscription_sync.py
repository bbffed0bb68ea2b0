"""Keeping the APIM subscription directory in step with ARM.

Each run lists the subscriptions of the app's API Management service and writes ARM's fields
(display name, scope, state, ARM's owner) of every subscription where they changed; a re-run
with nothing changed writes nothing. Cost centers, business units, tags and a manual owner are
never written by a sync (see :mod:`shared.core.cost_centers`), so what finance assigned survives.

A subscription ARM no longer lists keeps its record as last seen: usage already rolled up still
needs its cost center. The report names such subscriptions (``not_listed``) rather than deleting
them. The directory serves one API Management service (the app's ``APIM_RESOURCE_ID``), so a
stored ARM record the service does not list is one that went away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from shared.core.apim_ids import ApimServiceRef, parse_apim_service_id
from shared.core.cost_centers import (
    ArmSubscription,
    SubscriptionInfo,
    SubscriptionInfoRepository,
    apply_arm,
    subscription_key,
)
from shared.core.deployments import Source

log = logging.getLogger(__name__)


class SubscriptionSource(Protocol):
    def subscriptions(self, service: ApimServiceRef) -> list[ArmSubscription]: ...


@dataclass(frozen=True)
class SyncReport:
    added: tuple[SubscriptionInfo, ...] = ()  # new to the directory
    updated: tuple[SubscriptionInfo, ...] = ()  # ARM's fields changed (or a manual-only record first listed)
    unchanged: int = 0
    not_listed: tuple[str, ...] = ()  # ids listed by an earlier sync, not by this one (records kept)


def _now() -> datetime:
    return datetime.now(UTC)


class SubscriptionSyncService:
    def __init__(self, source: SubscriptionSource, repository: SubscriptionInfoRepository,
                 clock: Callable[[], datetime] = _now) -> None:
        self._source = source
        self._repository = repository
        self._clock = clock

    def sync(self, apim_resource_id: str) -> SyncReport:
        """List the subscriptions of ``apim_resource_id`` and store what changed.

        The id is parsed before any call, so a malformed setting fails naming it. A failed listing
        raises ``SubscriptionSourceError`` and writes nothing.
        """
        service = parse_apim_service_id(apim_resource_id)
        listed = self._source.subscriptions(service)
        now = self._clock()
        stored = {record.key: record for record in self._repository.all()}

        added: list[SubscriptionInfo] = []
        updated: list[SubscriptionInfo] = []
        unchanged = 0
        seen: set[str] = set()
        for observed in listed:
            key = subscription_key(observed.subscription_id)
            if key in seen:  # ARM names are unique per service; a repeat is a paging artefact
                log.warning("subscription sync: %r listed twice; the first listing kept", observed.subscription_id)
                continue
            seen.add(key)
            existing = stored.get(key)
            merged = apply_arm(existing, observed, now)
            if merged is existing:
                unchanged += 1
                continue
            self._repository.save_arm_fields(merged)
            (added if existing is None else updated).append(merged)

        gone = tuple(record.subscription_id for key, record in sorted(stored.items())
                     if record.source is Source.ARM and key not in seen)
        if gone:
            log.warning("subscription sync: %d subscription(s) no longer listed by %s; records kept: %s",
                        len(gone), service.name, ", ".join(repr(sid) for sid in gone[:20]))
        return SyncReport(tuple(added), tuple(updated), unchanged, gone)
