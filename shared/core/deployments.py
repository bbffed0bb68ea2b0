"""Azure OpenAI deployments and their history: which model, SKU and PTU count a name stood for, when.

Token usage in the gateway logs names a *deployment* (``DeploymentName``), not a SKU. Whether an
hour of that usage is billed per token (Standard / Batch) or per deployed PTU-hour (Provisioned),
and how many PTUs were billed, is a property of the deployment *at that moment*. A deployment can
be re-created or re-scaled, so the catalog keeps every version with the UTC moment it took effect
and answers "what was in force then", never only "what is there now".

Names are compared case-insensitively: ARM resource names, deployment names included, are
case-insensitive (``GPT-4o`` and ``gpt-4o`` are the same deployment of an account, and the log's
spelling need not match ARM's), so two spellings must never become two deployments.

SKU names map to (deployment type, billing mode) in one table, :data:`SKU_KINDS`. An SKU that is
not in it is kept as ARM returned it and reported by :meth:`DeploymentCatalog.unknown_skus`;
nothing guesses its price model.

**Priority processing is not an SKU.**  Azure offers it on GlobalStandard and DataZoneStandard
deployments (ARM ``sku.name`` unchanged) as a *service tier*: the deployment's
``properties.serviceTier`` (``Default`` | ``Priority``) sets what its requests default to, a request
may ask with ``service_tier: "priority"``, and the response body's ``service_tier`` says which tier
served it.  Azure bills each request by that answer: a priority request downgraded (prompt above
~128k tokens, or the ramp limit) reports ``"default"`` and is billed at the standard rate.  So a
tier is a property of the *tokens*, not of the deployment: :class:`ServiceTier` and
:func:`priority_offered` are what the costing needs to price tokens the response reported as
priority (Microsoft Learn, "Enable priority processing for Microsoft Foundry models"; ARM
``ServiceTier``: ``Default`` standard pricing, ``Priority`` premium pricing).

PTU capacity is only the ``sku.capacity`` of a *provisioned* SKU. For Standard and Batch SKUs
ARM's capacity is a rate limit (thousands of tokens per minute / enqueued tokens), which is not
billed; it is not kept, so that a rate-limit change does not make a new catalog version.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol


class DeploymentType(StrEnum):
    GLOBAL = "global"
    DATAZONE = "datazone"
    REGIONAL = "regional"


class BillingMode(StrEnum):
    STANDARD = "standard"  # per token
    BATCH = "batch"  # per token, batch meters
    PROVISIONED = "provisioned"  # per deployed PTU-hour, used or not


class Source(StrEnum):
    ARM = "arm"
    MANUAL = "manual"


@dataclass(frozen=True)
class SkuKind:
    deployment_type: DeploymentType
    mode: BillingMode


# The only place an SKU name is interpreted. Keys are lower case (ARM SKU names are case-insensitive).
SKU_KINDS: dict[str, SkuKind] = {
    "globalstandard": SkuKind(DeploymentType.GLOBAL, BillingMode.STANDARD),
    "datazonestandard": SkuKind(DeploymentType.DATAZONE, BillingMode.STANDARD),
    "standard": SkuKind(DeploymentType.REGIONAL, BillingMode.STANDARD),
    "globalbatch": SkuKind(DeploymentType.GLOBAL, BillingMode.BATCH),
    "datazonebatch": SkuKind(DeploymentType.DATAZONE, BillingMode.BATCH),
    "globalprovisionedmanaged": SkuKind(DeploymentType.GLOBAL, BillingMode.PROVISIONED),
    "datazoneprovisionedmanaged": SkuKind(DeploymentType.DATAZONE, BillingMode.PROVISIONED),
    "provisionedmanaged": SkuKind(DeploymentType.REGIONAL, BillingMode.PROVISIONED),
}


class ServiceTier(StrEnum):
    """The tier a response reports in ``service_tier`` (what Azure bills the request at)."""

    DEFAULT = "default"
    PRIORITY = "priority"


def priority_offered(kind: SkuKind) -> bool:
    """Whether Azure offers priority processing on deployments of this kind (GlobalStandard and
    DataZoneStandard only: not Regional, Batch or Provisioned)."""
    return kind.mode is BillingMode.STANDARD and kind.deployment_type in (DeploymentType.GLOBAL,
                                                                          DeploymentType.DATAZONE)


def sku_kind(sku: str) -> SkuKind | None:
    """(deployment type, billing mode) of an SKU name, or ``None`` for an SKU this code does not know."""
    return SKU_KINDS.get(sku.strip().lower())


def name_key(name: str) -> str:
    """The identity of a deployment name (ARM names are case-insensitive)."""
    return name.strip().lower()


@dataclass(frozen=True)
class Deployment:
    """One version of a deployment, in force from ``effective_from`` until the next version.

    ``deleted`` marks the moment a deployment disappeared from its account (a tombstone): a deleted
    PTU deployment stops billing, so its absence is history too.
    """

    name: str  # as the logs' DeploymentName spells it (compared case-insensitively)
    account: str  # Azure OpenAI account resource id (or name, for manual entries)
    model: str
    model_version: str
    sku: str  # as ARM returned it
    region: str
    ptus: int | None  # deployed PTUs of a provisioned SKU; None for every other SKU
    effective_from: datetime  # UTC
    source: Source = Source.ARM
    deleted: bool = False

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a deployment needs a name")
        offset = self.effective_from.utcoffset()
        if offset is None or offset != timedelta(0):
            raise ValueError(f"deployment {self.name!r}: effective_from must be a UTC datetime, "
                             f"got {self.effective_from!r}")
        if self.ptus is not None and self.ptus < 0:
            raise ValueError(f"deployment {self.name!r}: ptus must be >= 0, got {self.ptus}")

    @property
    def key(self) -> str:
        return name_key(self.name)

    @property
    def kind(self) -> SkuKind | None:
        return sku_kind(self.sku)

    @property
    def provisioned(self) -> bool:
        kind = self.kind
        return not self.deleted and kind is not None and kind.mode is BillingMode.PROVISIONED

    def same_terms(self, other: Deployment) -> bool:
        """Whether two versions describe the same deployment (moment, source and name spelling aside)."""
        return (self.key == other.key and self.account.lower() == other.account.lower()
                and self.model == other.model and self.model_version == other.model_version
                and self.sku.lower() == other.sku.lower() and self.region.lower() == other.region.lower()
                and self.ptus == other.ptus and self.deleted == other.deleted)


class DeploymentCatalog:
    """Every version of every deployment, by name (case-insensitive) and effective moment."""

    def __init__(self, records: Iterable[Deployment] = ()) -> None:
        self._history: dict[str, list[Deployment]] = {}
        for record in records:
            self.apply(record)

    def apply(self, record: Deployment) -> bool:
        """Add ``record`` as a version if it changes what is in force at its moment; ``True`` if added.

        Idempotent: applying the same terms again (at the same or a later moment) adds nothing. A
        record with the same moment as an existing version but other terms replaces it (a
        correction), as the storage row with the same key would be replaced.
        """
        versions = self._history.setdefault(record.key, [])
        moments = [v.effective_from for v in versions]
        at = bisect_right(moments, record.effective_from)
        if at and versions[at - 1].effective_from == record.effective_from:
            if versions[at - 1].same_terms(record):
                return False
            versions[at - 1] = record
            return True
        previous = versions[at - 1] if at else None
        if previous is None and record.deleted:
            return False  # the deletion of something never recorded changes nothing
        if previous is not None and previous.same_terms(record):
            return False
        versions.insert(at, record)
        return True

    def history(self, name: str) -> tuple[Deployment, ...]:
        return tuple(self._history.get(name_key(name), ()))

    def in_force(self, name: str, moment: datetime) -> Deployment | None:
        """The version with the latest ``effective_from`` <= ``moment``; ``None`` before the first or once deleted."""
        versions = self._history.get(name_key(name), [])
        at = bisect_right([v.effective_from for v in versions], moment)
        if not at or versions[at - 1].deleted:
            return None
        return versions[at - 1]

    def changes_in(self, name: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime, Deployment]]:
        """The versions in force during ``[start, end)`` as ``(from, until, version)`` segments, in order.

        Gaps (before the first version, after a deletion) are left out, so the segments' lengths
        add up to the time the deployment existed in the window.
        """
        versions = self._history.get(name_key(name), [])
        segments = []
        for index, version in enumerate(versions):
            until = versions[index + 1].effective_from if index + 1 < len(versions) else None
            lower = max(start, version.effective_from)
            upper = end if until is None else min(end, until)
            if lower < upper and not version.deleted:
                segments.append((lower, upper, version))
        return segments

    def names(self) -> list[str]:
        return sorted(self._history)

    def latest(self) -> Iterator[Deployment]:
        """The newest version of every deployment (tombstones included)."""
        for key in sorted(self._history):
            yield self._history[key][-1]

    def unknown_skus(self) -> list[Deployment]:
        """Versions whose SKU is not in :data:`SKU_KINDS`: they are not costed until the table knows them."""
        return [v for key in sorted(self._history) for v in self._history[key] if v.kind is None and not v.deleted]


class DeploymentRepository(Protocol):
    """Stored deployment versions (one row per version)."""

    def all(self) -> list[Deployment]: ...

    def history(self, name: str) -> list[Deployment]: ...

    def add(self, record: Deployment) -> None: ...


# -- Azure OpenAI account resource ids -------------------------------------------------------------
class AccountIdError(ValueError):
    """An account resource id is not ``/subscriptions/{s}/resourceGroups/{rg}/providers/
    Microsoft.CognitiveServices/accounts/{name}``; the message names the id."""


_ACCOUNT_ID = re.compile(
    r"/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.CognitiveServices/accounts/(?P<name>[^/]+)",
    re.IGNORECASE,  # ARM ids are case-insensitive; portals and CLIs spell the segments differently
)


@dataclass(frozen=True)
class AccountRef:
    resource_id: str
    subscription_id: str
    resource_group: str
    name: str


def parse_account_id(resource_id: str) -> AccountRef:
    text = resource_id.strip().rstrip("/")
    match = _ACCOUNT_ID.fullmatch(text)
    if match is None:
        raise AccountIdError(f"not an Azure OpenAI account resource id: {resource_id!r} (expected "
                             "/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices"
                             "/accounts/{name})")
    return AccountRef(text, match["subscription"], match["group"], match["name"])
