"""Shared helpers: side-by-side timing, percentiles, result lines, Azurite and settings."""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_API_KEY = "bench-api-key-0123456789"


@dataclass(frozen=True)
class Result:
    """One measured claim: ``value`` compared with ``target`` (``higher`` = bigger is better)."""

    name: str
    value: float
    unit: str
    target: float | None = None
    higher: bool = False
    detail: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.higher else self.value <= self.target

    def line(self) -> str:
        verdict = {None: "", True: "  [met]", False: "  [MISSED]"}[self.met]
        goal = "" if self.target is None else f" (target {'≥' if self.higher else '≤'} {self.target:g}{self.unit})"
        return f"RESULT {self.name}: {self.value:.3g}{self.unit}{goal}{verdict}" + (
            f"\n       {self.detail}" if self.detail else "")


def say(text: str) -> None:
    print(text, flush=True)


def cpu_seconds() -> float:
    """User + system CPU of this process, all threads (DuckDB's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Timings:
    wall: list[float]
    cpu: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def side_by_side(candidates: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, Timings]:
    """Run the candidates in turn, ``repeats`` rounds (A B A B ...), so load on this shared
    machine hits every candidate alike; wall and CPU seconds of each call."""
    out = {name: Timings([], []) for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            cpu, began = cpu_seconds(), time.perf_counter()
            fn()
            out[name].wall.append(time.perf_counter() - began)
            out[name].cpu.append(cpu_seconds() - cpu)
    return out


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@contextlib.contextmanager
def workdir(name: str) -> Iterator[Path]:
    """A scratch folder under $BENCH_DIR (default: the system temp dir), removed afterwards."""
    base = os.environ.get("BENCH_DIR")
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-", dir=base) as path:
        yield Path(path)


@contextlib.contextmanager
def azurite(folder: Path, large: bool = False) -> Iterator[Any]:
    """Azurite for one bench; ``large``: millions of entities, so in memory (its periodic save to
    disk stalls it, then breaks, at that size) with a V8 heap of up to 16 GB (~3 KB per entity)."""
    from shared.tooling.azurite_process import AzuriteProcess

    with AzuriteProcess(folder / "azurite", in_memory=large, heap_mb=16_384 if large else None) as process:
        yield process


def table_service(connection_string: str, **options: Any) -> Any:
    from azure.data.tables import TableServiceClient

    return TableServiceClient.from_connection_string(connection_string, **options)


def fresh_prefix() -> str:
    return "b" + uuid.uuid4().hex[:10]


def settings_for(workspace: Path, connection_string: str, prefix: str, **overrides: str) -> Any:
    from shared.settings import Settings

    values = {"LOG_SOURCE": "local", "LOCAL_WORKSPACE_PATH": str(workspace),
              "TABLES_CONNECTION_STRING": connection_string, "TABLE_PREFIX": prefix,
              "API_AUTH": "apikey", "API_KEY": BENCH_API_KEY, **overrides}
    return Settings(values)
