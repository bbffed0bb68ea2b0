"""What ``chargeback subscriptions set|list`` and the admin API do with the subscription directory.

Thin on purpose: validation and the merge rule live in :mod:`shared.core.cost_centers`; these
functions read the record, apply a person's change, and write back only the fields a person owns,
so a sync running at the same moment cannot undo them (nor they the sync).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from shared.core.cost_centers import (
    SubscriptionDirectory,
    SubscriptionInfo,
    SubscriptionInfoRepository,
    apply_manual,
    valid_subscription_id,
    valid_tags,
)
from shared.errors import InvalidRequestError


def set_subscription_info(store: SubscriptionInfoRepository, subscription_id: str, *,
                          cost_center: str | None = None, business_unit: str | None = None,
                          owner: str | None = None, tags: Mapping[str, str] | None = None,
                          now: datetime) -> SubscriptionInfo:
    """Set what finance needs of one subscription; ``None`` leaves a field unchanged.

    ``cost_center=""`` / ``business_unit=""`` clear it (unassigned again); ``owner=""`` drops the
    manual owner (ARM's applies again); ``tags`` replaces the whole tag map (``{}`` clears it).
    A subscription ARM has not listed (yet) is recorded anyway, with ``source`` manual, so the
    caller can warn about a possible typo. Raises ``InvalidRequestError`` naming the field.
    """
    sid = valid_subscription_id(subscription_id)
    existing = store.get(sid)
    record = apply_manual(existing, existing.subscription_id if existing else sid, now,
                          cost_center=cost_center, business_unit=business_unit, owner=owner, tags=tags)
    store.save_manual_fields(record)
    return record


def list_subscriptions(store: SubscriptionInfoRepository, *, cost_center: str | None = None) -> list[SubscriptionInfo]:
    """Every subscription in the directory, by id; only those of ``cost_center`` when given
    (``unassigned`` selects those without one)."""
    records = store.all()
    if cost_center is not None:
        records = [r for r in records if r.effective_cost_center == cost_center]
    return sorted(records, key=lambda r: (r.key, r.subscription_id))


def subscription_directory(store: SubscriptionInfoRepository) -> SubscriptionDirectory:
    """The whole directory, for ``cost_center_of`` lookups while building a report (one read)."""
    return SubscriptionDirectory(store.all())


def parse_tag_arguments(values: Sequence[str], option: str = "--tag") -> dict[str, str]:
    """``["team=search", "env=prod"]`` -> ``{"team": "search", "env": "prod"}`` (split at the first ``=``).

    A value may be empty (``k=``) and may itself contain ``=``; a missing ``=``, an empty name or a
    name given twice is an ``InvalidRequestError`` naming ``option``.
    """
    tags: dict[str, str] = {}
    for value in values:
        raw_name, separator, text = value.partition("=")
        name = raw_name.strip(" ")
        if not separator or not name:
            raise InvalidRequestError(option, f"expected NAME=VALUE, got {value!r}")
        if name in tags:
            raise InvalidRequestError(option, f"tag {name!r} given twice")
        tags[name] = text
    try:
        return valid_tags(tags)
    except InvalidRequestError as exc:
        raise InvalidRequestError(option, str(exc).removeprefix("tags: ")) from None
