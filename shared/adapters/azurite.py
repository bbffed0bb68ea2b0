"""Azurite, the local Table Storage emulator: its public, well-known development account."""

from __future__ import annotations

# Published in the Azurite documentation; it only ever opens a local emulator.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def connection_string(port: int, host: str = "127.0.0.1", service: str = "table") -> str:
    """The development account on a local Azurite ``service`` (``table`` or ``blob``), path-style."""
    endpoint = {"table": "TableEndpoint", "blob": "BlobEndpoint"}[service]
    return (f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"{endpoint}=http://{host}:{port}/{DEV_ACCOUNT};")
