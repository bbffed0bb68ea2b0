"""Start and stop a local Azurite service, table or blob (installed by ``npm ci`` from package.json).

Each service is its own process (``azurite-table`` / ``azurite-blob``) on its own free port, so a
test that needs blobs starts one beside the table service without touching it.  Both run with
``--skipApiVersionCheck``: the blob SDK sends an API version newer than Azurite knows.

Azurite keeps every entity in memory and, with a ``location``, saves the whole database to disk as
one JSON string every few seconds: past a few million entities that save stalls its event loop
(clients see reset connections) and finally exceeds V8's longest string.  The scale benches
therefore run it with ``in_memory=True`` (``--inMemoryPersistence``, nothing saved) and a larger
V8 heap (``heap_mb``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from shared.adapters.azurite import DEV_ACCOUNT, connection_string
from shared.errors import StorageUnavailableError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


SERVICES = ("table", "blob")


def azurite_executable(service: str = "table") -> Path:
    path = PROJECT_ROOT / "node_modules" / ".bin" / f"azurite-{service}"
    if not path.exists():
        raise StorageUnavailableError(f"Azurite is not installed ({path} missing): run `npm ci` in {PROJECT_ROOT}")
    return path


class AzuriteProcess:
    """One Azurite service (``table`` by default, or ``blob``) on loopback, data kept under ``location``."""

    def __init__(self, location: Path, port: int | None = None, host: str = "127.0.0.1",
                 service: str = "table", *, in_memory: bool = False, heap_mb: int | None = None) -> None:
        if service not in SERVICES:
            raise ValueError(f"service must be one of {SERVICES}, got {service!r}")
        self.service = service
        self.location = location
        self.host = host
        self.port = port or free_port(host)
        self.in_memory = in_memory
        self.heap_mb = heap_mb
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.port, self.host, self.service)

    @property
    def account_url(self) -> str:
        """The development account's URL on this service (path-style, as Azurite serves it)."""
        return f"http://{self.host}:{self.port}/{DEV_ACCOUNT}"

    def start(self, timeout: float = 30.0) -> AzuriteProcess:
        if shutil.which("node") is None:
            raise StorageUnavailableError("Node.js is required to run Azurite locally")
        self.location.mkdir(parents=True, exist_ok=True)
        # in memory, --location is refused (the debug log still goes to our log file)
        options = ["--inMemoryPersistence"] if self.in_memory else ["--location", str(self.location)]
        environment = dict(os.environ)
        if self.heap_mb is not None:
            environment["NODE_OPTIONS"] = f"{environment.get('NODE_OPTIONS', '')} --max-old-space-size={self.heap_mb}"
        with (self.location / "azurite.log").open("ab") as log:  # the child keeps its own descriptor
            self._process = subprocess.Popen(
                [str(azurite_executable(self.service)), f"--{self.service}Host", self.host,
                 f"--{self.service}Port", str(self.port), *options,
                 "--silent", "--disableTelemetry", "--skipApiVersionCheck"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=environment)
        deadline = time.monotonic() + timeout
        while not port_open(self.port, self.host):
            if self._process.poll() is not None:
                raise StorageUnavailableError(
                    f"Azurite exited with code {self._process.returncode}; see {self.location / 'azurite.log'}")
            if time.monotonic() > deadline:
                self.stop()
                raise StorageUnavailableError(f"Azurite did not open port {self.port} within {timeout:.0f}s")
            time.sleep(0.05)
        return self

    def stop(self, graceful: bool = True) -> None:
        """SIGTERM lets Azurite persist its data; SIGKILL simulates a crash."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    def __enter__(self) -> AzuriteProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
