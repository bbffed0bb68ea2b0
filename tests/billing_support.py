"""Helpers for the pricing / quota / alert tests: a price file, seeded rows, an ASGI client, a
real HTTP receiver on 127.0.0.1 for the webhook channels, and independent cost arithmetic."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from shared.api.app import AppContext, create_app
from shared.settings import Settings

ADMIN_KEY = "test-admin-key-9876543210"

# EUR on purpose (not the default file's USD), with a price change on 2026-11-16 for "alpha".
PRICE_FILE = {
    "currency": "EUR",
    "note": "test prices",
    "prefixRules": [
        {"prefix": "alpha-20", "model": "alpha"},
        {"prefix": "alpha-mini-20", "model": "alpha-mini"},
    ],
    "prices": [
        {"model": "alpha", "effectiveFrom": "2026-01-01", "input": "3.00", "cachedInput": "1.50", "output": "12.00"},
        {"model": "alpha", "effectiveFrom": "2026-11-16", "input": "2.00", "cachedInput": "0.50", "output": "8.00"},
        {"model": "alpha-mini", "effectiveFrom": "2026-01-01", "input": "0.15", "cachedInput": "0.075",
         "output": "0.60"},
        {"model": "embed", "effectiveFrom": "2026-01-01", "input": "0.02", "cachedInput": "0.02", "output": "0"},
    ],
}
# The same prices, written out for the independent computation: (input, cached input, output).
ALPHA_OLD = ("3.00", "1.50", "12.00")
ALPHA_NEW = ("2.00", "0.50", "8.00")
ALPHA_MINI = ("0.15", "0.075", "0.60")
EMBED = ("0.02", "0.02", "0")


def expected_cost(prompt: int, cached: int, completion: int, price: tuple[str, str, str]) -> Decimal:
    """Computed here without the pricing module: (prompt - cached)*in + cached*cin + completion*out, / 1e6."""
    inp, cin, out = (Decimal(p) for p in price)
    return (Decimal(prompt - cached) * inp + Decimal(cached) * cin + Decimal(completion) * out) / Decimal(1_000_000)


def with_prices(settings: Settings, tmp_path: Path, **overrides: str) -> Settings:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(PRICE_FILE))
    return settings.with_overrides(PRICES_PATH=str(path), ADMIN_API_KEY=ADMIN_KEY, **overrides)


def call(settings: Settings, method: str, path: str, *, now: Any, key: str | None = None,
         **kwargs: Any) -> httpx.Response:
    from tests.conftest import TEST_API_KEY

    async def run() -> httpx.Response:
        app = create_app(AppContext(lambda: settings, clock=lambda: now))
        headers = {} if key == "" else {"x-api-key": key or TEST_API_KEY}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                     headers=headers) as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(run())


class Receiver:
    """A real HTTP server on 127.0.0.1 (port 0) recording JSON POSTs; answers per path."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.status: dict[str, int] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                with receiver._lock:
                    receiver.requests.append((self.command, self.path, dict(self.headers), body))
                    code = receiver.status.get(self.path.split("?")[0], 200)
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = _handle
            do_PATCH = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def bodies(self, path: str) -> list[Any]:
        with self._lock:
            return [body for _, p, _, body in self.requests if p.split("?")[0] == path]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def receiver_fixture() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver
