"""A loopback HTTP proxy in front of Azurite that can misbehave on ``$batch`` requests.

Tests point the real SDK (and the fast path through its pipeline) at it: the proxy forwards every
request to Azurite unchanged, except the transactions it is told to refuse (as the service refuses
one: 400 with an ``odata.error``), to garble (an answer no Table Storage gives, as a broken proxy
or gateway might), or to reset the connection (before forwarding, or after Azurite has committed
the transaction, so the answer is lost: the worst case for a retry).  Shared key signatures cover
the path, not the host, so forwarding keeps them valid.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.loopback_http import QuietHandler, serving

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


Relayed = tuple[int, str, list[tuple[str, str]], bytes]  # status, reason, headers, body


def relayed(handler: BaseHTTPRequestHandler, host: str, port: int, path: str, body: bytes) -> Relayed:
    """The upstream's answer to the request ``handler`` is serving, sent on to ``host:port`` as is."""
    upstream = http.client.HTTPConnection(host, port, timeout=30)
    try:
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() not in HOP_BY_HOP and k.lower() != "proxy-connection"}
        upstream.request(handler.command, path, body=body, headers=headers)
        response = upstream.getresponse()
        return response.status, response.reason, response.getheaders(), response.read()
    finally:
        upstream.close()


def send_relayed(handler: BaseHTTPRequestHandler, answer: Relayed) -> None:
    status, reason, headers, payload = answer
    handler.send_response(status, reason)
    for name, value in headers:
        if name.lower() not in HOP_BY_HOP:
            handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


class TableProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream_port: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream_port = upstream_port
        self.refuse_marker: bytes | None = None  # a $batch whose body holds it is refused (400 odata.error)
        self.garble_batches = 0  # this many next $batch requests get a 200 text/html page
        self.reset_batches = 0  # this many next $batch requests: connection reset, nothing forwarded
        self.reset_batches_after_commit = 0  # this many next: forwarded (committed), then connection reset
        self.batches: list[bytes] = []  # every $batch body seen
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def connection_string(self, azurite_connection_string: str) -> str:
        return azurite_connection_string.replace(f":{self.upstream_port}/", f":{self.port}/")


class _Handler(QuietHandler):
    server: TableProxy

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        is_batch = self.path.split("?")[0].endswith("$batch")
        reset_after = False
        if is_batch:
            with self.server.lock:
                self.server.batches.append(body)
                garble = self.server.garble_batches > 0
                if garble:
                    self.server.garble_batches -= 1
                reset_before = self.server.reset_batches > 0
                if reset_before:
                    self.server.reset_batches -= 1
                reset_after = not reset_before and self.server.reset_batches_after_commit > 0
                if reset_after:
                    self.server.reset_batches_after_commit -= 1
            if reset_before:
                return self._reset()
            if garble:
                return self._answer(200, "text/html", b"<html><body>Gateway says hello</body></html>")
            if self.server.refuse_marker is not None and self.server.refuse_marker in body:
                error = {"odata.error": {"code": "PropertyValueInvalid",
                                         "message": {"lang": "en-US", "value": "The property value is invalid."}}}
                return self._answer(400, "application/json;odata=minimalmetadata", json.dumps(error).encode())
        answer = relayed(self, "127.0.0.1", self.server.upstream_port, self.path, body)
        if reset_after:
            return self._reset()
        send_relayed(self, answer)
        return None

    def _reset(self) -> None:
        """Close with an RST (linger 0) and no answer, as a restarting service or a dropped NAT entry does."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _answer(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_MERGE = _relay


@contextmanager
def table_proxy(upstream_port: int) -> Iterator[TableProxy]:
    proxy = TableProxy(upstream_port)
    with serving(proxy):
        yield proxy
