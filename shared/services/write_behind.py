"""Writes that run behind the reads: the rollup's reads of the next subscriptions go on while the
writes of the previous ones are in flight, instead of waiting for them.

A :class:`WriteBehind` runs the writes it is handed one after the other, in the order handed, on a
thread of its own; the caller keeps reading and computing meanwhile.  At most ``depth`` writes wait
(handing over one more first waits for the oldest), so memory holds a bounded number of batches.
Before each write it calls ``before_write`` (the writer lease's confirmation), in the writing thread,
right before the rows go out.  After a write fails, no later one starts: :meth:`WriteBehind.drain`
(and any later hand-over) raises that first failure.  Leaving the block waits for the write in
flight and drops the ones not started, so nothing is written after the run has ended.

What a caller may rely on: when :meth:`WriteBehind.drain` returns, every write handed over has
succeeded (the rollup moves its watermark only then); each write is an idempotent replace, so a
failed run leaves rows a rerun rewrites identically.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")
DEPTH = 2  # writes waiting or in flight at once: one writing, one ready behind it


class WriteBehind(Generic[T]):
    def __init__(self, write: Callable[[Sequence[T]], int], before_write: Callable[[], None] = lambda: None,
                 depth: int = DEPTH) -> None:
        self._write, self._before_write, self._depth = write, before_write, max(1, depth)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-behind")
        self._pending: deque[Future[int]] = deque()
        self._failure: BaseException | None = None  # the first write that failed (read by both threads)
        self._lock = threading.Lock()
        self.written = 0  # rows the finished writes reported written

    def __enter__(self) -> WriteBehind[T]:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        # the write in flight finishes (a transaction is not cut in half); the waiting ones never start
        self._writer.shutdown(wait=True, cancel_futures=True)

    def submit(self, rows: Sequence[T]) -> Future[int]:
        """Hand ``rows`` over for writing after the writes before them; returns the write's future
        (its result: rows written).  Waits while ``depth`` writes are pending; raises the first
        failure of an earlier write instead of handing over."""
        while len(self._pending) >= self._depth:
            self._settle(self._pending.popleft())
        with self._lock:
            failed = self._failure
        if failed is not None:
            raise failed
        future = self._writer.submit(self._run, rows)
        self._pending.append(future)
        return future

    def drain(self) -> int:
        """Wait for every write handed over; raises the first failure.  Returns the rows written so far."""
        while self._pending:
            self._settle(self._pending.popleft())
        with self._lock:
            failed = self._failure
        if failed is not None:
            raise failed
        return self.written

    def _run(self, rows: Sequence[T]) -> int:
        with self._lock:
            failed = self._failure
        if failed is not None:  # an earlier write failed: nothing after it goes out
            raise failed
        try:
            self._before_write()
            return self._write(rows)
        except BaseException as exc:
            self._failed(exc)
            raise

    def _settle(self, future: Future[int]) -> None:
        try:
            self.written += future.result()
        except BaseException as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = exc
