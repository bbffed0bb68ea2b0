"""The ports of the local run, checked before anything starts.

The local run listens on three loopback ports: the report API (7071, as ``func start``), Azurite's
table service (10002, what ``UseDevelopmentStorage=true`` in local.settings.json points at) and the
dev gateway (8081, the sample's ``PROBE_ENDPOINT``).  A fixed port that is taken is an error naming
it, before Azurite or the gateway start; ``--port 0`` instead takes free ports for all three (and
the run prints the real URLs).
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from shared.errors import ChargebackError

API_PORT = 7071
AZURITE_TABLE_PORT = 10002
DEV_GATEWAY_PORT = 8081


class PortInUseError(ChargebackError):
    """A port the local run needs is taken (another local run, ``func start``, Azurite...)."""


@dataclass(frozen=True)
class LocalPorts:
    api: int
    azurite: int
    gateway: int


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a listener could bind ``host:port`` now (as uvicorn and Azurite do, SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def plan_ports(api_port: int, host: str = "127.0.0.1", serve: bool = True) -> LocalPorts:
    """The three ports, or PortInUseError naming each fixed one that is taken and what to do.

    ``api_port == 0`` means free ports for everything (a second run beside a first one).
    """
    if api_port == 0:
        return LocalPorts(api=free_port(host) if serve else 0, azurite=free_port(), gateway=free_port())
    wanted = [(AZURITE_TABLE_PORT, "Azurite (table service)", "127.0.0.1"),
              (DEV_GATEWAY_PORT, "the dev gateway", "127.0.0.1")]
    if serve:
        wanted.insert(0, (api_port, "the report API", host))
    taken = [f"{port} ({what})" for port, what, bind_host in wanted if not port_free(port, bind_host)]
    if taken:
        ports = f"port {taken[0]} is" if len(taken) == 1 else f"ports {', '.join(taken)} are"
        raise PortInUseError(
            f"{ports} already in use on this machine (another local run, `func start` or "
            f"Azurite?): stop what listens there (`ss -ltnp | grep :PORT` shows it), or run "
            f"`bash scripts/local-run.sh --port 0` to use free ports for everything")
    return LocalPorts(api=api_port, azurite=AZURITE_TABLE_PORT, gateway=DEV_GATEWAY_PORT)
