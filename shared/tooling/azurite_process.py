"""Start and stop a local Azurite table service (installed by ``npm ci`` from package.json)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from shared.adapters.azurite import connection_string
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


def azurite_executable() -> Path:
    path = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-table"
    if not path.exists():
        raise StorageUnavailableError(f"Azurite is not installed ({path} missing): run `npm ci` in {PROJECT_ROOT}")
    return path


class AzuriteProcess:
    """Azurite's table service on loopback, data kept under ``location``."""

    def __init__(self, location: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.location = location
        self.host = host
        self.port = port or free_port(host)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.port, self.host)

    def start(self, timeout: float = 30.0) -> AzuriteProcess:
        if shutil.which("node") is None:
            raise StorageUnavailableError("Node.js is required to run Azurite locally")
        self.location.mkdir(parents=True, exist_ok=True)
        with (self.location / "azurite.log").open("ab") as log:  # the child keeps its own descriptor
            self._process = subprocess.Popen(
                [str(azurite_executable()), "--tableHost", self.host, "--tablePort", str(self.port),
                 "--location", str(self.location), "--silent", "--disableTelemetry", "--skipApiVersionCheck"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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
