"""The one seam between the Table REST fast path and azure-data-tables' internals.

``table_batch`` (transactions) and ``table_query`` (entity queries) build the same REST requests
the SDK builds and send them through the table client's own pipeline — the generated client
behind ``TableClient._client``, the call the SDK's own ``submit_transaction`` makes — so
authentication (shared key or managed identity), retries and the user agent stay the SDK's.
That attribute is private: :func:`send` is the only code that touches it, and it fails loudly,
naming the installed SDK version, if an SDK upgrade removed it (the fast path was written for
azure-data-tables 12.7.0, pinned in requirements.txt).

:func:`table_transport` is the HTTP transport the table clients are given: azure-core's own
``RequestsTransport``, whose ``requests`` session reads the proxy environment once per endpoint
rather than on every request (see :class:`EnvironmentOnceSession`).
"""

from __future__ import annotations

import functools
import json
import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from shared.errors import StorageError

if TYPE_CHECKING:
    import requests
    from azure.core.pipeline.transport import RequestsTransport

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


# What requests' proxy and CA-bundle lookup reads (urllib's getproxies_environment, should_bypass_proxies,
# merge_environment_settings), in the spellings operators use: a change to any of them is seen at once.
_ENVIRONMENT = (*(name for base in ("https_proxy", "http_proxy", "all_proxy", "no_proxy")
                  for name in (base, base.upper())), "REQUEST_METHOD", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
_CA_BUNDLE, _CURL_CA_BUNDLE = _ENVIRONMENT.index("REQUESTS_CA_BUNDLE"), _ENVIRONMENT.index("CURL_CA_BUNDLE")


@functools.cache
def environment_once_session_class() -> type[requests.Session]:
    """:class:`EnvironmentOnceSession`, defined on first use (requests is not imported with this module)."""
    import requests
    from requests.sessions import merge_setting
    from requests.utils import get_environ_proxies

    class EnvironmentOnceSession(requests.Session):
        """requests resolves the environment's proxies (``HTTPS_PROXY``, ``NO_PROXY``, ...) and CA
        bundle on every request by scanning all of ``os.environ`` and matching the host against
        ``NO_PROXY``: about 0.2 ms of Python per Table Storage request.  This session resolves them
        with requests' own function once per (endpoint, proxy variables) and reuses the answer;
        the variables are read each time (a few lookups), so setting or changing one takes effect
        on the next request, as before.  Everything else is requests' own behaviour."""

        def __init__(self) -> None:  # one per transport, used by its threads alike (dict reads and writes)
            super().__init__()
            self._environment_proxies: dict[tuple[str, str | None, tuple[str | None, ...]], dict[str, str]] = {}

        def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
            if not self.trust_env:
                return super().merge_environment_settings(url, proxies, stream, verify, cert)
            # The same steps as requests.Session.merge_environment_settings, the proxy lookup cached.
            environment = tuple(os.environ.get(name) for name in _ENVIRONMENT)
            no_proxy = proxies.get("no_proxy") if proxies is not None else None
            scheme, _, rest = str(url).partition("://")
            key = (f"{scheme}://{rest.split('/', 1)[0]}", no_proxy, environment)
            environment_proxies = self._environment_proxies.get(key)
            if environment_proxies is None:
                if len(self._environment_proxies) >= 64:
                    self._environment_proxies.clear()
                environment_proxies = get_environ_proxies(url, no_proxy=no_proxy)
                self._environment_proxies[key] = environment_proxies
            if proxies is not None:
                for name, proxy in environment_proxies.items():
                    proxies.setdefault(name, proxy)
            if verify is True or verify is None:
                verify = environment[_CA_BUNDLE] or environment[_CURL_CA_BUNDLE] or verify
            return {"proxies": merge_setting(proxies, self.proxies), "stream": merge_setting(stream, self.stream),
                    "verify": merge_setting(verify, self.verify), "cert": merge_setting(cert, self.cert)}

    return EnvironmentOnceSession


def table_transport(**options: Any) -> RequestsTransport:
    """The transport for a table client built with ``options`` (its timeouts and connection
    settings are the transport's): azure-core's ``RequestsTransport`` as the SDK would build it,
    its session an :class:`EnvironmentOnceSession` set up the way azure-core sets up its own."""
    from azure.core.pipeline.transport import RequestsTransport

    if not callable(getattr(RequestsTransport, "_init_session", None)):  # azure-core moved it: its own session
        return RequestsTransport(**options)
    session = environment_once_session_class()()
    transport = RequestsTransport(session=session, session_owner=True, **options)
    # What azure-core does to a session it creates itself: its adapters (larger read blocks, urllib3's
    # retries off: the pipeline retries) and trust_env from use_env_settings.
    transport._init_session(session)
    return transport
