"""Table Storage calls follow the proxy environment (``HTTP_PROXY``, ``NO_PROXY``) as requests does,
set before or after the store's first request: the store from ``composition.table_store`` (the real
SDK and its transport) writes to Azurite directly or through a loopback forward proxy."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import ServiceRequestError

from shared.adapters.table_batch import submit_replace
from shared.composition import table_store
from shared.settings import Settings
from tests.loopback_http import QuietHandler, serving
from tests.table_proxy import relayed, send_relayed
from tests.unit.test_table_transport import clear_environment


class ForwardProxy(ThreadingHTTPServer):
    """A plain-HTTP forward proxy: takes absolute-form requests, relays them, records what it relayed."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Relay)
        self.relayed: list[tuple[str, str]] = []  # (method, absolute URL)
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Relay(QuietHandler):
    server: ForwardProxy

    def _relay(self) -> None:
        target = urlsplit(self.path)  # a proxy is sent the absolute URL
        with self.server.lock:
            self.server.relayed.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = target.path + (f"?{target.query}" if target.query else "")
        send_relayed(self, relayed(self, target.hostname or "", target.port or 80, path, body))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_MERGE = _relay


@contextmanager
def forward_proxy() -> Iterator[ForwardProxy]:
    proxy = ForwardProxy()
    with serving(proxy):
        yield proxy


def batches(proxy: ForwardProxy) -> list[str]:
    with proxy.lock:
        return [url for method, url in proxy.relayed if method == "POST" and urlsplit(url).path.endswith("/$batch")]


def test_transactions_follow_the_proxy_environment_as_it_changes(settings: Settings,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    clear_environment(monkeypatch)
    store = table_store(settings)
    name = settings.table_prefix + "proxied"
    table = store.table(name)
    with forward_proxy() as proxy:
        assert submit_replace(table, [{"PartitionKey": "p", "RowKey": "direct", "N": 1}]) == 1
        assert batches(proxy) == []

        monkeypatch.setenv("HTTP_PROXY", proxy.url)  # after the store's first requests
        assert submit_replace(table, [{"PartitionKey": "p", "RowKey": "proxied", "N": 2}]) == 1
        assert len(batches(proxy)) == 1 and batches(proxy)[0].startswith(f"http://127.0.0.1:{settings_port(settings)}/")

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert submit_replace(table, [{"PartitionKey": "p", "RowKey": "bypassed", "N": 3}]) == 1
        monkeypatch.delenv("NO_PROXY")
        monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # the lower-case spelling wins: a dead port
        with pytest.raises(ServiceRequestError):  # after the pipeline's retries
            submit_replace(table, [{"PartitionKey": "p", "RowKey": "dead", "N": 4}])
        assert len(batches(proxy)) == 1
    monkeypatch.delenv("http_proxy")
    monkeypatch.delenv("HTTP_PROXY")
    stored = {entity["RowKey"]: entity["N"] for entity in table.list_entities()}
    assert stored == {"direct": 1, "proxied": 2, "bypassed": 3}


def settings_port(settings: Settings) -> int:
    endpoint = dict(part.split("=", 1) for part in str(settings.tables_connection_string).split(";") if "=" in part)
    return int(urlsplit(endpoint["TableEndpoint"]).port or 0)
