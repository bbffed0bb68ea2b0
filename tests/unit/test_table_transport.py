"""The table clients' transport: azure-core's own, set up as azure-core sets up its own, whose session
settles the environment's proxies and CA bundle exactly as a plain ``requests.Session`` does, only
resolved once per endpoint (and again whenever a proxy or CA variable changes)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from azure.core.pipeline.transport import RequestsTransport

from shared.adapters.table_rest import environment_once_session_class, table_transport

VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "REQUEST_METHOD", "REQUESTS_CA_BUNDLE",
             "CURL_CA_BUNDLE", "Https_Proxy")
URLS = ("https://account.table.core.windows.net/$batch", "http://127.0.0.1:10002/devstoreaccount1/$batch?sv=x",
        "https://other.example.com:8443/t()")
# Each step sets (or, with None, removes) variables, then both sessions answer for every URL and call shape.
STEPS: list[dict[str, str | None]] = [
    {},
    {"HTTPS_PROXY": "http://proxy.corp:3128"},
    {"NO_PROXY": "account.table.core.windows.net,127.0.0.1"},
    {"NO_PROXY": "*"},
    {"NO_PROXY": None, "HTTP_PROXY": "http://http-proxy:8080", "REQUEST_METHOD": "GET"},  # CGI: HTTP_PROXY ignored
    {"REQUEST_METHOD": None},
    {"https_proxy": "http://lower-wins:1"},
    {"Https_Proxy": "http://mixed:2", "https_proxy": None, "HTTPS_PROXY": None},
    {"ALL_PROXY": "socks5://all:1080", "Https_Proxy": None, "HTTP_PROXY": None},
    {"REQUESTS_CA_BUNDLE": "/etc/requests.pem"},
    {"REQUESTS_CA_BUNDLE": None, "CURL_CA_BUNDLE": "/etc/curl.pem"},
    {"CURL_CA_BUNDLE": None, "ALL_PROXY": None},
]
CALLS: list[tuple[dict[str, str] | None, Any, Any]] = [  # (per-request proxies, verify, cert) as callers pass them
    ({}, True, None), ({}, None, None), ({}, False, None), ({}, "/my/ca.pem", ("c", "k")),
    ({"https": "http://explicit:1"}, True, None), ({"no_proxy": "account.table.core.windows.net"}, True, None),
]


def clear_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        for spelling in {name, name.upper(), name.lower()}:
            monkeypatch.delenv(spelling, raising=False)


def test_the_session_settles_every_request_as_requests_does(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_environment(monkeypatch)
    ours = environment_once_session_class()()
    ours.proxies = {"http": "http://session-level:9"}  # a session-level setting merges in as before
    asked = 0
    with ours:
        for step in STEPS:
            for name, value in step.items():
                if value is None:
                    monkeypatch.delenv(name, raising=False)
                else:
                    monkeypatch.setenv(name, value)
            with requests.Session() as plain:
                plain.proxies = dict(ours.proxies)
                for url in URLS:
                    for proxies, verify, cert in CALLS:
                        for _ in range(2):  # the second time from the cache
                            expected = plain.merge_environment_settings(url, dict(proxies or {}), None, verify, cert)
                            got = ours.merge_environment_settings(url, dict(proxies or {}), None, verify, cert)
                            assert got == expected, (step, url, proxies, verify)
                            asked += 1
    assert asked == len(STEPS) * len(URLS) * len(CALLS) * 2


def test_a_proxy_set_after_the_first_request_is_used_for_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_environment(monkeypatch)
    url = URLS[0]
    with environment_once_session_class()() as session:
        assert session.merge_environment_settings(url, {}, None, True, None)["proxies"] == {}
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
        assert session.merge_environment_settings(url, {}, None, True, None)["proxies"]["https"] == (
            "http://proxy.corp:3128")
        monkeypatch.setenv("NO_PROXY", ".core.windows.net")
        assert session.merge_environment_settings(url, {}, None, True, None)["proxies"] == {}


def test_without_trust_env_the_environment_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    with environment_once_session_class()() as session:
        session.trust_env = False
        assert session.merge_environment_settings(URLS[0], {}, None, True, None)["proxies"] == {}


def test_the_transport_is_set_up_as_azure_core_sets_up_its_own() -> None:
    options = {"retry_total": 3, "retry_backoff_factor": 0.4, "connection_timeout": 10}
    ours, theirs = table_transport(**options), RequestsTransport(**options)
    theirs.open()
    try:
        assert type(ours.session).__name__ == "EnvironmentOnceSession"
        assert ours.session is not None and theirs.session is not None
        assert ours.session.trust_env is theirs.session.trust_env is True
        for scheme in ("http://", "https://"):
            mine, azure = ours.session.adapters[scheme], theirs.session.adapters[scheme]
            assert type(mine) is type(azure)
            assert repr(mine.max_retries) == repr(azure.max_retries)  # urllib3 retries off: the pipeline retries
        assert (ours.connection_config.timeout, ours.connection_config.read_timeout) == (10, 300)
        assert vars(ours.connection_config) == vars(theirs.connection_config)
    finally:
        ours.close()
        theirs.close()
    assert ours.session is None  # the transport owns (and closed) its session
