"""One alert per quarantine incident, through the alert outbox and its channels.

An incident starts when the quarantine (rows Table Storage refused, see
``shared.adapters.quarantine``) goes from empty to holding rows, and ends when it is empty again.
Its start is stored once (create-if-absent), and the alert's outbox key is derived from it: every
run that still sees rows records the same alert again, the outbox keeps the first, so the alert
exists exactly once per incident even if a run dies between opening the incident and recording
it.  Delivery is the outbox's (the alert run right after the rollup sends it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from shared.core.alerting import QUARANTINE, Alert
from shared.core.quotas import Period
from shared.errors import ChargebackError
from shared.ports import AlertOutbox

log = logging.getLogger(__name__)
PIPELINE = "chargeback-pipeline"  # the alert's "subscription": the pipeline itself, no team's


class QuarantineIncidents(Protocol):
    def open_since(self) -> datetime | None: ...

    def open(self, now: datetime) -> datetime: ...

    def close(self) -> None: ...


def quarantine_alert(count: int, since: datetime, now: datetime) -> Alert:
    """``tokens`` carries the number of rows kept (an alert has no other count)."""
    return Alert(PIPELINE, Period.DAY, since, since + timedelta(days=1), QUARANTINE, 0, count, None, Decimal(0),
                 None, "", 0, Decimal(0), now)


class QuarantineAlarm:
    def __init__(self, incidents: QuarantineIncidents, outbox: AlertOutbox,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.incidents, self.outbox, self.clock = incidents, outbox, clock

    def __call__(self, quarantined: int) -> None:
        """Told the quarantine count after each run.  Never fails the run: the rows are written and
        the watermark moved; an alert that could not be recorded is recorded by the next run."""
        try:
            self._check(quarantined)
        except ChargebackError as exc:
            log.error("quarantine alert not recorded (the next run tries again): %s", exc)

    def _check(self, quarantined: int) -> None:
        if quarantined == 0:
            if self.incidents.open_since() is not None:
                self.incidents.close()
                log.info("quarantine empty again: incident closed")
            return
        now = self.clock()
        since = self.incidents.open_since() or self.incidents.open(now)
        if self.outbox.record(quarantine_alert(quarantined, since, now), now):
            log.error("%d rows refused by Table Storage are in quarantine (since %s): alert recorded",
                      quarantined, since.isoformat())
