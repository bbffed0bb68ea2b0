"""The dev gateway's log rows into the local DuckDB workspace, off the request path.

DuckDB allows one writing process, and other tools (the rollup, ``chargeback workspace import``)
open the same file: so rows are queued, and a background thread writes them in batches, opening
and closing the file for each batch and retrying while another process holds the lock.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from shared.adapters import local_workspace

log = logging.getLogger(__name__)


class WorkspaceWriter:
    """Log rows go to a background thread that writes them in batches (open, insert, commit, close),
    so a request never waits for DuckDB.  While another process holds the write lock the rows stay
    queued and the write is retried."""

    RETRY_SECONDS = 0.5

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows_written = 0
        self._cond = threading.Condition()
        self._gateway: list[dict[str, Any]] = []
        self._llm: list[dict[str, Any]] = []
        self._busy = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="dev-gateway-writer", daemon=True)
        self._thread.start()

    def write(self, gateway_rows: list[dict[str, Any]], llm_rows: list[dict[str, Any]]) -> None:
        with self._cond:
            self._gateway.extend(gateway_rows)
            self._llm.extend(llm_rows)
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._gateway) + len(self._llm)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row so far is in the workspace (True) or ``timeout`` passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._gateway or self._llm or self._busy), timeout)

    def close(self, timeout: float = 10.0) -> None:
        if not self.flush(timeout):
            log.error("dev gateway: %d log rows could not be written to %s (still locked?)", self.pending, self.path)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._gateway or self._llm) or self._closed)
                if self._closed:
                    return
                gateway, llm = self._gateway, self._llm
                self._gateway, self._llm = [], []
                self._busy = True
            try:
                self._write(gateway, llm)
            except Exception as exc:  # LogSourceError (locked) or anything else: keep the rows, retry
                log.warning("dev gateway: %d log rows not written yet, retrying: %s", len(gateway) + len(llm), exc)
                with self._cond:
                    self._gateway[:0], self._llm[:0] = gateway, llm
                    self._cond.wait(self.RETRY_SECONDS)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _write(self, gateway: list[dict[str, Any]], llm: list[dict[str, Any]]) -> None:
        con = local_workspace.connect(self.path, lock_wait=2.0)
        try:
            local_workspace.create_tables(con)
            con.execute("BEGIN TRANSACTION")
            written = local_workspace.insert_rows(con, "ApiManagementGatewayLogs", gateway)
            written += local_workspace.insert_rows(con, "ApiManagementGatewayLlmLog", llm)
            con.execute("COMMIT")
        finally:
            con.close()
        self.rows_written += written
