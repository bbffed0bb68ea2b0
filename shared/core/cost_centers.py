"""Who an APIM subscription is, for finance: display name, owner, scope, cost center, business unit, tags.

Usage is keyed by the APIM subscription id the gateway logs (``ApimSubscriptionId``, the
subscription's ARM ``name``), which means nothing to finance. :class:`SubscriptionInfo` maps it
to what a chargeback line is filed under.

Two writers own different fields, and neither may undo the other:

- **ARM** (the sync) owns ``display_name``, ``scope`` and ``state``, and the owner ARM reports
  (``arm_owner``: the user id of ``ownerId``);
- **a person** (``chargeback subscriptions set`` / the admin API) owns ``cost_center``,
  ``business_unit`` and ``tags``, and may set ``owner`` (an e-mail, a team name), which then wins
  over ARM's owner until it is cleared again.

ARM knows nothing of cost centers or tags, so a sync never touches them; a manual owner survives
every later sync. A subscription with no cost center is :data:`UNASSIGNED`, as is one nobody has
ever recorded (the logs can name subscriptions the directory has not seen yet).

Subscription ids are compared case-insensitively (ARM resource names are case-insensitive), and
are otherwise kept exactly as written: display names and ids are stored verbatim, whatever they
contain; making them safe is the job of the storage keys and of whoever renders them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from shared.core.deployments import Source
from shared.errors import InvalidRequestError

UNASSIGNED = "unassigned"
MAX_COST_CENTER = 128  # also the business unit's limit
MAX_TAG_TEXT = 256  # a tag key or value (ARM's own tag limits are of the same order)
MAX_TAGS = 50
MAX_OWNER = 256
MAX_SUBSCRIPTION_ID = 256  # APIM's limit on a subscription's name


def subscription_key(subscription_id: str) -> str:
    """The identity of an APIM subscription id (ARM names are case-insensitive)."""
    return subscription_id.lower()


# -- validation (every message names the field) -----------------------------------------------------
_LINE_BREAKS_AND_CONTROLS = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in _LINE_BREAKS_AND_CONTROLS for ch in text)


def _code(field_name: str, text: str) -> str:
    """A cost center or business unit: printable, at most 128 characters; surrounding spaces dropped."""
    if not isinstance(text, str):
        raise InvalidRequestError(field_name, "must be text")
    value = text.strip(" ")  # spaces only: a tab or line break is refused, not dropped
    if len(value) > MAX_COST_CENTER:
        raise InvalidRequestError(field_name, f"must be at most {MAX_COST_CENTER} characters, got {len(value)}")
    if not value.isprintable():
        raise InvalidRequestError(field_name, "must contain only printable characters (no control characters, "
                                              "tabs or line breaks)")
    return value


def valid_cost_center(text: str) -> str:
    """``text`` made a cost center (``""`` clears it), or :class:`InvalidRequestError` naming ``cost_center``."""
    return _code("cost_center", text)


def valid_business_unit(text: str) -> str:
    return _code("business_unit", text)


def valid_owner(text: str) -> str:
    if not isinstance(text, str):
        raise InvalidRequestError("owner", "must be text")
    value = text.strip(" ")  # spaces only: a tab or line break is refused, not dropped
    if len(value) > MAX_OWNER:
        raise InvalidRequestError("owner", f"must be at most {MAX_OWNER} characters, got {len(value)}")
    if _has_control(value):
        raise InvalidRequestError("owner", "must not contain control characters or line breaks")
    return value


def valid_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """At most 50 tags; keys non-empty; keys and values at most 256 characters, no control characters."""
    if not isinstance(tags, Mapping):
        raise InvalidRequestError("tags", "must be a mapping of tag names to values")
    if len(tags) > MAX_TAGS:
        raise InvalidRequestError("tags", f"at most {MAX_TAGS} tags, got {len(tags)}")
    checked: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidRequestError("tags", f"tag names and values must be text, got {key!r}: {value!r}")
        name = key.strip(" ")
        if not name:
            raise InvalidRequestError("tags", "a tag name must not be empty")
        for part, text in ((f"tag name {name[:40]!r}", name), (f"tag {name[:40]!r} value", value)):
            if len(text) > MAX_TAG_TEXT:
                raise InvalidRequestError("tags", f"{part} must be at most {MAX_TAG_TEXT} characters, got {len(text)}")
            if _has_control(text):
                raise InvalidRequestError("tags", f"{part} must not contain control characters or line breaks")
        if name in checked:
            raise InvalidRequestError("tags", f"tag name {name[:40]!r} given twice")
        checked[name] = value
    return checked


def valid_subscription_id(subscription_id: str) -> str:
    if not isinstance(subscription_id, str) or not subscription_id:
        raise InvalidRequestError("subscription_id", "must not be empty")
    if len(subscription_id) > MAX_SUBSCRIPTION_ID:
        raise InvalidRequestError("subscription_id", f"must be at most {MAX_SUBSCRIPTION_ID} characters")
    if _has_control(subscription_id):
        raise InvalidRequestError("subscription_id", "must not contain control characters or line breaks")
    return subscription_id


def _utc(moment: datetime, what: str) -> datetime:
    offset = moment.utcoffset()
    if offset is None or offset != timedelta(0):
        raise ValueError(f"{what} must be a UTC datetime, got {moment!r}")
    return moment


# -- the record --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArmSubscription:
    """What ARM says of one APIM subscription (keys are never read)."""

    subscription_id: str  # the sid: ARM ``name`` = the logs' ApimSubscriptionId
    display_name: str  # verbatim; "" when the subscription has no name
    owner: str  # the user id of ``ownerId`` (``/users/{userId}``); "" when it has no owner
    scope: str  # service-relative: /products/{id}, /apis/{id} or /apis
    state: str  # active, suspended, submitted, rejected, cancelled, expired (as ARM wrote it)


@dataclass(frozen=True)
class SubscriptionInfo:
    subscription_id: str
    display_name: str = ""
    owner: str = ""  # the manual owner when one is set, else ARM's (``arm_owner``)
    scope: str = ""
    state: str = ""
    cost_center: str = ""  # "" = unassigned (see ``effective_cost_center``)
    business_unit: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    source: Source = Source.MANUAL  # ARM once a sync has listed it; MANUAL while only a person has set it
    updated_at: datetime | None = None  # UTC, the last change by either writer
    arm_owner: str = ""
    owner_is_manual: bool = False

    def __post_init__(self) -> None:
        # Only emptiness is refused here: what ARM lists is kept verbatim, however odd (input from a
        # person is checked by ``valid_subscription_id`` in ``apply_manual``).
        if not self.subscription_id:
            raise ValueError("a subscription record needs a subscription id")
        if self.updated_at is not None:
            _utc(self.updated_at, f"subscription {self.subscription_id!r}: updated_at")

    @property
    def key(self) -> str:
        return subscription_key(self.subscription_id)

    @property
    def effective_cost_center(self) -> str:
        return self.cost_center or UNASSIGNED

    def arm_terms(self) -> tuple[str, str, str, str, str]:
        return (self.subscription_id, self.display_name, self.scope, self.state, self.arm_owner)


def apply_arm(existing: SubscriptionInfo | None, observed: ArmSubscription, now: datetime) -> SubscriptionInfo:
    """``existing`` with ARM's fields replaced by ``observed``; ``existing`` itself when ARM says nothing new.

    Cost center, business unit, tags and a manual owner are kept: ARM does not own them.
    """
    _utc(now, "now")
    base = existing or SubscriptionInfo(observed.subscription_id)
    merged = replace(base, subscription_id=observed.subscription_id, display_name=observed.display_name,
                     scope=observed.scope, state=observed.state, arm_owner=observed.owner,
                     owner=base.owner if base.owner_is_manual else observed.owner, source=Source.ARM)
    if existing is not None and existing.source is Source.ARM and merged.arm_terms() == existing.arm_terms() \
            and merged.owner == existing.owner:
        return existing
    return replace(merged, updated_at=now)


def apply_manual(existing: SubscriptionInfo | None, subscription_id: str, now: datetime, *,
                 cost_center: str | None = None, business_unit: str | None = None, owner: str | None = None,
                 tags: Mapping[str, str] | None = None) -> SubscriptionInfo:
    """``existing`` (or a new manual record) with what a person set; ``None`` leaves a field as it is.

    ``cost_center=""`` / ``business_unit=""`` clear it (unassigned); ``owner=""`` clears the manual
    owner, so ARM's owner applies again; ``tags`` replaces the whole tag map (``{}`` clears it).
    Every value is validated first, so a bad one changes nothing.
    """
    _utc(now, "now")
    sid = valid_subscription_id(subscription_id)
    if cost_center is None and business_unit is None and owner is None and tags is None:
        raise InvalidRequestError("fields", "nothing to set: give cost_center, business_unit, owner or tags")
    base = existing or SubscriptionInfo(sid)
    manual_owner = None if owner is None else valid_owner(owner)
    return replace(
        base,
        cost_center=base.cost_center if cost_center is None else valid_cost_center(cost_center),
        business_unit=base.business_unit if business_unit is None else valid_business_unit(business_unit),
        tags=dict(base.tags) if tags is None else valid_tags(tags),
        owner=base.owner if manual_owner is None else (manual_owner or base.arm_owner),
        owner_is_manual=base.owner_is_manual if manual_owner is None else bool(manual_owner),
        updated_at=now,
    )


# -- lookups -----------------------------------------------------------------------------------------
class SubscriptionDirectory:
    """Every known subscription by id (case-insensitive), for reports that group usage by cost center."""

    def __init__(self, records: Iterable[SubscriptionInfo] = ()) -> None:
        self._by_key = {record.key: record for record in records}

    def get(self, subscription_id: str) -> SubscriptionInfo | None:
        return self._by_key.get(subscription_key(subscription_id))

    def cost_center_of(self, subscription_id: str) -> str:
        """The subscription's cost center, or :data:`UNASSIGNED` when it has none or is unknown."""
        record = self.get(subscription_id)
        return record.effective_cost_center if record else UNASSIGNED

    def business_unit_of(self, subscription_id: str) -> str:
        record = self.get(subscription_id)
        return record.business_unit if record and record.business_unit else UNASSIGNED


class HasSubscription(Protocol):
    @property
    def subscription_id(self) -> str: ...


R = TypeVar("R", bound=HasSubscription)


def group_by_cost_center(rows: Iterable[R], cost_center_of: Callable[[str], str]) -> dict[str, list[R]]:
    """``rows`` (anything with a ``subscription_id``: cost lines, usage, ``SubscriptionInfo``) by cost center.

    Cost centers come in sorted order with :data:`UNASSIGNED` last; rows keep their order within a
    group. ``cost_center_of`` is usually :meth:`SubscriptionDirectory.cost_center_of`.
    """
    groups: dict[str, list[R]] = {}
    for row in rows:
        groups.setdefault(cost_center_of(row.subscription_id), []).append(row)
    return {name: groups[name] for name in sorted(groups, key=lambda name: (name == UNASSIGNED, name))}


class SubscriptionInfoRepository(Protocol):
    """Stored subscription records, one per subscription (case-insensitive id).

    The two writes touch disjoint fields: a sync and a manual ``set`` can run at the same time,
    and because each writes only the fields it owns, neither can put back the other's old values.
    """

    def all(self) -> list[SubscriptionInfo]: ...

    def get(self, subscription_id: str) -> SubscriptionInfo | None: ...

    def save_arm_fields(self, record: SubscriptionInfo) -> None:
        """Write ``subscription_id``, ``display_name``, ``scope``, ``state``, ``arm_owner``, ``updated_at``."""
        ...

    def save_manual_fields(self, record: SubscriptionInfo) -> None:
        """Write ``subscription_id``, ``cost_center``, ``business_unit``, the manual owner, ``tags``, ``updated_at``."""
        ...
