"""Cost Management export files in a blob container (``azure-storage-blob``), as COST_EXPORT_CONTAINER names it.

The setting is the container's URL, optionally followed by a folder
(``https://<account>.blob.core.windows.net/<container>/<directory>``): only blobs under that folder
are listed. In Azure the app's identity reads them (managed identity; *Storage Blob Data Reader*
on the container). A loopback URL whose first path segment is Azurite's development account
(``http://127.0.0.1:10000/devstoreaccount1/<container>``) is Azurite's blob service: path-style,
and signed with the emulator's published key (it only ever opens a local emulator).

The client is built on first use, never at import; every SDK failure becomes
:class:`CostExportStoreError` naming the container (never a key or a token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.adapters.azurite import DEV_ACCOUNT, DEV_KEY
from shared.core.export_layout import ExportBlob
from shared.errors import ChargebackError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class CostExportStoreError(ChargebackError):
    """The export container cannot be listed or read (the message names the container)."""


@dataclass(frozen=True)
class ContainerAddress:
    account_url: str  # https://<account>.blob.core.windows.net, or http://127.0.0.1:<port>/devstoreaccount1
    container: str
    folder: str  # "" or "dir/sub" (no leading or trailing slash)
    emulator: bool

    @property
    def where(self) -> str:
        return f"{self.account_url}/{self.container}" + (f"/{self.folder}" if self.folder else "")


def container_address(url: str) -> ContainerAddress:
    """Split a container URL into account, container and folder (path-style for the local emulator)."""
    parts = urlsplit(url.strip().rstrip("/"))
    segments = [s for s in parts.path.split("/") if s]
    emulator = parts.hostname in LOOPBACK and len(segments) >= 2 and segments[0] == DEV_ACCOUNT
    base = f"{parts.scheme}://{parts.netloc}"
    if emulator:
        return ContainerAddress(f"{base}/{DEV_ACCOUNT}", segments[1], "/".join(segments[2:]), True)
    if not segments:
        raise CostExportStoreError(f"{url!r} names no container")
    return ContainerAddress(base, segments[0], "/".join(segments[1:]), False)


class BlobCostExportStore:
    """Lists and downloads the blobs under the configured folder."""

    def __init__(self, url: str, credential: Any | None = None, **client_options: Any) -> None:
        self.address = container_address(url)
        if credential is None and not self.address.emulator:
            raise CostExportStoreError(f"{self.address.where}: a credential is needed outside the local emulator")
        self._credential = ({"account_name": DEV_ACCOUNT, "account_key": DEV_KEY} if self.address.emulator
                            else credential)
        self._options = {"retry_total": 3, "connection_timeout": 10, **client_options}
        self._client: Any = None

    def _container(self) -> Any:
        if self._client is None:
            from azure.storage.blob import ContainerClient

            self._client = ContainerClient(self.address.account_url, self.address.container,
                                           credential=self._credential, **self._options)
        return self._client

    def list_blobs(self) -> list[ExportBlob]:
        """Every blob under the folder (name relative to the container, last-modified moment)."""
        from azure.core.exceptions import AzureError

        prefix = f"{self.address.folder}/" if self.address.folder else None
        try:
            return [ExportBlob(item.name, item.last_modified)
                    for item in self._container().list_blobs(name_starts_with=prefix)]
        except AzureError as exc:
            raise self._failed("listing", exc) from exc

    def download(self, name: str) -> bytes:
        from azure.core.exceptions import AzureError

        try:
            data: bytes = self._container().download_blob(name).readall()
        except AzureError as exc:
            raise self._failed(f"reading {name!r}", exc) from exc
        return data

    def _failed(self, what: str, exc: Exception) -> CostExportStoreError:
        status = getattr(exc, "status_code", None)
        answer = f"HTTP {status}" if status else type(exc).__name__
        return CostExportStoreError(f"cost export container {self.address.where}: {what} failed ({answer})")
