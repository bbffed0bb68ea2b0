"""The report API under a bounded local load: 2,000 requests at concurrency 32, sent from this
process to uvicorn serving the app in a second process, over loopback only.  Zero errors is the
assertion; throughput and p99 are printed (targets live in bench/, not here)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from shared.composition import table_store
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge
from shared.settings import Settings
from shared.tooling.azurite_process import free_port, port_open
from tests.conftest import TEST_API_KEY

REQUESTS = 2000
CONCURRENCY = 32


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    rows = [UsageRow(Granularity.HOUR, datetime(2026, 11, day, hour, tzinfo=UTC), UsageKey(sub, "p", "gpt-4o", "d"),
                     Counters(requests=1, prompt_tokens=10, total_tokens=15))
            for sub in ("team-a", "team-b", "team-c") for day in range(1, 11) for hour in (9, 14)]
    store = table_store(settings)
    store.upsert(rows)
    store.upsert(merge(rows, Granularity.DAY))
    store.upsert(merge(rows, Granularity.MONTH))
    port = free_port()
    env = {**os.environ, **settings._values}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "shared.triggers.http_api:asgi_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not port_open(port):
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else "uvicorn exited"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=15)
    if process.stderr is not None:
        process.stderr.close()


def test_api_under_load_has_no_errors(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    paths = ["/api/usage?subscription=team-a&from=2026-11-01&to=2026-11-30",
             "/api/usage?subscription=team-b&from=2026-11-01&to=2026-11-30&granularity=hour",
             "/api/usage?from=2026-11-01&to=2026-11-30&granularity=month&format=csv"]
    latencies: list[float] = []
    failures: list[str] = []

    async def worker(client: httpx.AsyncClient, queue: asyncio.Queue[int]) -> None:
        while True:
            try:
                n = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            began = time.perf_counter()
            try:
                response = await client.get(paths[n % len(paths)])
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:100]}")
            except httpx.HTTPError as exc:
                failures.append(type(exc).__name__)
            latencies.append(time.perf_counter() - began)

    async def run() -> float:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(REQUESTS):
            queue.put_nowait(n)
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with httpx.AsyncClient(base_url=server, headers={"x-api-key": TEST_API_KEY}, limits=limits,
                                     timeout=30) as client:
            began = time.perf_counter()
            await asyncio.gather(*(worker(client, queue) for _ in range(CONCURRENCY)))
            return time.perf_counter() - began

    elapsed = asyncio.run(run())
    assert failures == []
    assert len(latencies) == REQUESTS
    ordered = sorted(latencies)
    p50, p99 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99) - 1]
    with capsys.disabled():
        print(f"\nload: {REQUESTS} requests, concurrency {CONCURRENCY}: {REQUESTS / elapsed:.0f} req/s, "
              f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, 0 errors")
