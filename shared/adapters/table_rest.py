"""The one seam between the Table REST fast path and azure-data-tables' internals.

``table_batch`` (transactions) and ``table_query`` (entity queries) build the same REST requests
the SDK builds and send them through the table client's own pipeline — the generated client
behind ``TableClient._client``, the call the SDK's own ``submit_transaction`` makes — so
authentication (shared key or managed identity), retries and the user agent stay the SDK's.
That attribute is private: :func:`send` is the only code that touches it, and it fails loudly,
naming the installed SDK version, if an SDK upgrade removed it (the fast path was written for
azure-data-tables 12.7.0, pinned in requirements.txt).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from shared.errors import StorageError

# What azure-data-tables 12.x sends with every request.
PROTOCOL_HEADERS = {"x-ms-version": "2019-02-02", "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx"}
WRITTEN_FOR = "12.7.0"


def send(table: Any, request: Any) -> Any:
    """Send an ``azure.core.rest.HttpRequest`` through ``table``'s pipeline; the streamed response."""
    sender = getattr(getattr(table, "_client", None), "send_request", None)
    if not callable(sender):
        raise StorageError(
            f"azure-data-tables {_sdk_version()} has no TableClient._client.send_request, which the Table REST "
            f"fast path (shared/adapters/table_rest.py) needs; it was written for {WRITTEN_FOR}: pin that "
            "version or adapt this module")
    return sender(request, stream=True)


def _sdk_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("azure-data-tables")
    except PackageNotFoundError:
        return "(version unknown)"


def endpoints(table: Any) -> tuple[str, str, str]:
    """(account URL, table URL, SAS query or "") of a TableClient, whose ``url`` is the account
    endpoint with the SAS query, if one is used."""
    scheme, host, path, sas, _ = urlsplit(table.url)
    account = urlunsplit((scheme, host, path.rstrip("/"), "", ""))
    return account, f"{account}/{quote(table.table_name, safe='')}", sas


def error_text(body: bytes) -> str:
    """The service's error code and message (``odata.error``), or the start of the body."""
    match = re.search(rb'\{"odata\.error".*\}', body, re.DOTALL)
    if match:
        try:
            error = json.loads(match.group(0))["odata.error"]
            return f"{error.get('code', '?')}: {error.get('message', {}).get('value', '')}".strip()
        except (ValueError, KeyError, AttributeError, TypeError):
            pass
    return body[:200].decode("utf-8", "replace").strip() or "(empty response)"
