"""Is the usage storage reachable?  The question ``/api/health`` answers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from shared.core.usage import Granularity
from shared.errors import ChargebackError
from shared.ports import UsageRepository

log = logging.getLogger(__name__)


def storage_reachable(repository: Callable[[], UsageRepository]) -> bool:
    """One read of a partition that holds nothing: proves the table answers, costs nothing.

    ``repository`` is built inside the check, so a store that cannot even be built (bad storage
    settings) reports unreachable like one that does not answer.
    """
    try:
        repository().read("health-check", Granularity.MONTH, datetime(2000, 1, 1, tzinfo=UTC),
                          datetime(2000, 2, 1, tzinfo=UTC))
    except ChargebackError as exc:
        log.warning("health check: %s", exc)
        return False
    return True
