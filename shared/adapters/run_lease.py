"""The writer lease: one rollup or backfill writes usage rows at a time.

Two runs over the same window would each write what their own query saw; the one whose query was
older could overwrite the newer one's rows after it finished, and nothing would recompute them.
So a run takes a lease first: an entity in the state table (PartitionKey ``lease``, RowKey the
job) holding the owner and an expiry.  Every change to it is conditional on the ETag the run last
saw, so of two runs racing for it exactly one wins.  The holder renews it before every chunk it
writes (:meth:`TableLease.confirm`); a run that finds its lease taken (it stalled past the expiry
and another run took over) stops before writing anything more.  A second run waits a bounded time
for the lease and then gives up with :class:`LeaseHeldError`, naming the holder.  The lease is
deleted on exit; a crashed holder's lease simply expires.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

from shared.adapters.entity_values import utc
from shared.errors import ConcurrentUpdateError, LeaseHeldError, LeaseLostError, NotFoundError

log = logging.getLogger(__name__)
T = TypeVar("T")
PARTITION = "lease"
DURATION = timedelta(minutes=5)  # far longer than one chunk's query and write; renewed per chunk
WAIT = timedelta(seconds=20)  # a second run's patience: the timer fires every 15 minutes anyway


class StateTables(Protocol):
    state_table: str

    def table(self, name: str) -> Any: ...

    def call(self, operation: Callable[[], T]) -> T: ...


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class TableLease:
    """Implements ``WriterLease`` on the state table."""

    def __init__(self, tables: StateTables, name: str, *, owner: str | None = None,
                 duration: timedelta = DURATION, wait: timedelta = WAIT, poll_seconds: float = 0.5,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._tables = tables
        self.name = name
        self.owner = owner or default_owner()
        self.duration, self.wait, self.poll_seconds = duration, wait, poll_seconds
        self.clock, self.sleep = clock, sleep
        self._etag: str | None = None

    def _record(self, now: datetime) -> dict[str, Any]:
        return {"PartitionKey": PARTITION, "RowKey": self.name, "Owner": self.owner,
                "AcquiredAt": now, "ExpiresAt": now + self.duration}

    def acquire(self) -> None:
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        table = self._tables.table(self._tables.state_table)
        deadline = time.monotonic() + self.wait.total_seconds()
        waited = False
        while True:
            now = self.clock()
            try:
                current = self._tables.call(lambda: table.get_entity(PARTITION, self.name))
            except NotFoundError:
                current = None
            try:
                if current is None:
                    fresh = self._record(now)
                    metadata = self._tables.call(partial(table.create_entity, fresh))
                    self._taken(metadata, None)
                    return
                expires = utc(current.get("ExpiresAt"))
                if current.get("Owner") == self.owner or expires is None or expires <= now:
                    metadata = self._tables.call(partial(
                        table.update_entity, self._record(now), mode=UpdateMode.REPLACE,
                        etag=current.metadata["etag"], match_condition=MatchConditions.IfNotModified))
                    self._taken(metadata, current.get("Owner") if current.get("Owner") != self.owner else None)
                    return
            except ConcurrentUpdateError:
                continue  # another run moved first: look again
            if time.monotonic() >= deadline:
                message = (f"another run ({current.get('Owner')}) holds the usage writer lease '{self.name}' "
                           f"until {expires.isoformat() if expires else '?'}; concurrent rollups are refused, "
                           f"this one waited {self.wait.total_seconds():.0f}s and wrote nothing (the next run "
                           "catches up)")
                log.error("%s", message)
                raise LeaseHeldError(message)
            if not waited:
                log.warning("rollup writer lease '%s' is held by %s until %s; waiting up to %.0fs", self.name,
                            current.get("Owner"), expires.isoformat() if expires else "?", self.wait.total_seconds())
                waited = True
            self.sleep(self.poll_seconds)

    def _taken(self, metadata: Any, expired_owner: object) -> None:
        self._etag = str(metadata["etag"])
        if expired_owner:
            log.warning("took over the expired writer lease '%s' of %s", self.name, expired_owner)
        log.info("writer lease '%s' taken by %s", self.name, self.owner)

    def confirm(self) -> None:
        """Renew the lease, conditional on this run's ETag: proof no other run took it meanwhile."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        if self._etag is None:
            raise LeaseLostError(f"this run does not hold the writer lease '{self.name}'")
        table = self._tables.table(self._tables.state_table)
        record, etag = self._record(self.clock()), self._etag
        try:
            metadata = self._tables.call(lambda: table.update_entity(
                record, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified))
        except (ConcurrentUpdateError, NotFoundError) as exc:
            self._etag = None
            message = (f"the writer lease '{self.name}' of {self.owner} expired and another run took it: "
                       "this run stops before writing more (a concurrent run owns the window now)")
            log.error("%s", message)
            raise LeaseLostError(message) from exc
        self._etag = str(metadata["etag"])

    def release(self) -> None:
        from azure.core import MatchConditions

        if self._etag is None:
            return
        table = self._tables.table(self._tables.state_table)
        etag, self._etag = self._etag, None
        try:
            self._tables.call(lambda: table.delete_entity(PARTITION, self.name, etag=etag,
                                                          match_condition=MatchConditions.IfNotModified))
        except (ConcurrentUpdateError, NotFoundError):
            log.warning("writer lease '%s' was no longer %s's to release", self.name, self.owner)
