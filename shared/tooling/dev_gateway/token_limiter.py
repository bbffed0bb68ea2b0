"""APIM's ``llm-token-limit`` per subscription key: tokens (prompt + completion) over a sliding
60-second window, with the Retry-After a caller past its limit is told to wait."""

from __future__ import annotations

import math
import threading
import time
from collections import deque

TPM_WINDOW_SECONDS = 60.0


class TokenLimiter:
    def __init__(self, window: float = TPM_WINDOW_SECONDS) -> None:
        self._window = window
        self._used: dict[str, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def _expire(self, key: str, now: float) -> deque[tuple[float, int]]:
        entries = self._used.setdefault(key, deque())
        while entries and entries[0][0] <= now - self._window:
            entries.popleft()
        return entries

    def check(self, key: str, limit: int, estimate: int) -> tuple[int, int | None]:
        """(tokens remaining, None) when ``estimate`` more tokens fit, else (remaining, Retry-After seconds)."""
        now = time.monotonic()
        with self._lock:
            entries = self._expire(key, now)
            used = sum(n for _, n in entries)
            remaining = max(0, limit - used)
            if used + estimate <= limit:
                return remaining, None
            needed, freed = used + estimate - limit, 0
            for at, tokens in entries:
                freed += tokens
                if freed >= needed:
                    return remaining, max(1, math.ceil(at + self._window - now))
            return remaining, math.ceil(self._window)  # bigger than the limit on its own

    def consume(self, key: str, tokens: int) -> None:
        with self._lock:
            self._expire(key, time.monotonic()).append((time.monotonic(), tokens))
