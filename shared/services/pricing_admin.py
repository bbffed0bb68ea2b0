"""Operator changes to what costs are computed from: deployment records, negotiated rates, the PTU policy.

A manual deployment record (``chargeback deployments set``, ``PUT /api/deployments/{name}``) is a
catalog version like one from ARM, effective from the moment given (default: now), so costs before
it keep the terms then in force.  Input is validated here, once, for the command line and the API
alike; a bad field raises ``InvalidRequestError`` naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, cast

from shared.core.costing_rules import PtuPolicy
from shared.core.deployments import (
    Deployment,
    DeploymentCatalog,
    DeploymentRepository,
    DeploymentType,
    Source,
    name_key,
    sku_kind,
)
from shared.core.meters import version_code_of
from shared.core.ptu import Reservation, Term
from shared.errors import InvalidRequestError

MANUAL_ACCOUNT = "manual"
_REGION = re.compile(r"^[a-z0-9]+$")


def ptu_policy_from(idle: str, reservations: Sequence[tuple[str, int, str, str, str]]) -> PtuPolicy:
    """The PTU policy from PTU_IDLE_COST and PTU_RESERVATIONS entries (deployment, ptus, term, price, start).

    A reservation is given per deployment: Azure matches reservations by deployment type and region,
    so a reservation shared by several deployments is entered as one share per deployment.
    """
    by_name: dict[str, list[Reservation]] = {}
    for name, ptus, term, price, start in reservations:
        try:
            day = date.fromisoformat(start)
            amount = Decimal(price)
        except (ValueError, InvalidOperation):
            raise InvalidRequestError("PTU_RESERVATIONS", f"{name}: bad price {price!r} or start {start!r}") from None
        # The deployment type is the one in force when costing; Reservation needs one, global is a
        # placeholder the costing replaces by matching this deployment only.
        reservation = Reservation(ptus, amount, datetime(day.year, day.month, day.day, tzinfo=UTC), Term(term),
                                  DeploymentType.GLOBAL)
        by_name.setdefault(name_key(name), []).append(reservation)
    chosen = cast(Literal["unallocated", "spread"], idle)
    return PtuPolicy(chosen, {name: tuple(entries) for name, entries in by_name.items()})


def _moment(text: str | None, now: datetime) -> datetime:
    if not text:
        return now.astimezone(UTC)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequestError("from", f"expected YYYY-MM-DD or an ISO datetime, got {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def manual_deployment(name: str, model: str, version: str, sku: str, region: str, ptus: int | None,
                      effective_from: str | None, now: datetime, account: str | None = None) -> Deployment:
    """A validated manual catalog record."""
    if not name.strip() or any(ch in name for ch in "/?#") or not name.isprintable():
        raise InvalidRequestError("name", f"not a deployment name: {name!r}")
    if not model.strip():
        raise InvalidRequestError("model", "is required")
    try:
        version_code_of(version)
    except ValueError as exc:
        raise InvalidRequestError("version", str(exc)) from None
    kind = sku_kind(sku)
    if kind is None:
        raise InvalidRequestError("sku", f"unknown SKU {sku!r}")
    if not _REGION.match(region.strip().lower()):
        raise InvalidRequestError("region", f"expected an ARM region name like eastus2, got {region!r}")
    provisioned = kind.mode.value == "provisioned"
    if provisioned and (ptus is None or ptus <= 0):
        raise InvalidRequestError("ptu", f"a {sku} deployment needs its PTU count (> 0)")
    if not provisioned and ptus is not None:
        raise InvalidRequestError("ptu", f"{sku} is billed per token: it has no PTUs")
    return Deployment(name.strip(), account or MANUAL_ACCOUNT, model.strip().lower(), version.strip(), sku.strip(),
                      region.strip().lower(), ptus, _moment(effective_from, now), Source.MANUAL)


def deployment_from_body(name: str, body: Mapping[str, Any], now: datetime) -> Deployment:
    """``PUT /api/deployments/{name}`` body: ``model``, ``version``, ``sku``, ``region``, ``ptu``?, ``from``?."""
    def text(field: str, required: bool = True) -> str | None:
        value = body.get(field)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise InvalidRequestError(field, "must be a string" + (" (required)" if required else ""))
        return value

    ptu = body.get("ptu")
    if ptu is not None and (isinstance(ptu, bool) or not isinstance(ptu, int)):
        raise InvalidRequestError("ptu", "must be a whole number")
    return manual_deployment(name, text("model") or "", text("version") or "", text("sku") or "",
                             text("region") or "", ptu, text("from", required=False), now,
                             text("account", required=False))


def set_deployment(repository: DeploymentRepository, record: Deployment) -> bool:
    """Store ``record`` as a version if it changes what is in force; ``False`` when it changes nothing."""
    catalog = DeploymentCatalog(repository.history(record.name))
    if not catalog.apply(record):
        return False
    repository.add(record)
    return True


def deployment_json(record: Deployment) -> dict[str, object]:
    kind = record.kind
    return {"name": record.name, "account": record.account, "model": record.model, "version": record.model_version,
            "sku": record.sku, "deploymentType": kind.deployment_type.value if kind else None,
            "mode": kind.mode.value if kind else None, "region": record.region, "ptu": record.ptus,
            "effectiveFrom": record.effective_from.strftime("%Y-%m-%dT%H:%M:%SZ"), "source": record.source.value,
            "deleted": record.deleted}
