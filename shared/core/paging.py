"""Continuation tokens of the usage report: opaque to callers, signed, bound to query and caller.

A token is ``base64url(zlib(payload)) + "." + base64url(HMAC-SHA256(key, that text))``.  The payload
holds a digest of the query parameters, a digest of the caller's scope, the resolved time window
(so every page reads the same window even when ``to`` defaulted to "now"), the **position** the
next page resumes from (the storage read, the Table continuation of the storage page holding the
first row not yet sent, and the last row sent: no page re-reads the range before it), what the
first page computed for the whole result and every page repeats (``carried``: totals and row
count), and an expiry.  The payload is not secret — it holds nothing the caller did not send or
receive, plus storage keys of the caller's own rows — but any change to it breaks the signature,
and a valid token only ever continues the same query for the same caller scope.

Reading where a storage read stands is also here: :data:`Continuation` (the service's
``NextPartitionKey``/``NextRowKey`` pair) and :class:`StoragePage`, one response of a paged read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core.usage import UsageRow
from shared.errors import ForbiddenError, InvalidRequestError

TOKEN_VERSION = 2
TOKEN_TTL = timedelta(hours=1)
MAX_TOKEN = 6144  # characters: well inside the 8 KiB request line of the Functions host
PARAMETER = "next"

Continuation = tuple[str, str | None]  # (NextPartitionKey, NextRowKey) of a Table query


@dataclass(frozen=True)
class StoragePage:
    """One response of a paged storage read: the continuation it was fetched with (``None``: the
    read's first page), its rows, and the continuation of the next page (``None``: the last)."""

    start: Continuation | None
    rows: list[UsageRow]
    following: Continuation | None


def query_digest(parameters: Mapping[str, Any]) -> str:
    """Digest of the normalized query parameters (page size excluded: it may change between pages)."""
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class PageToken:
    query: str  # query_digest of the parameters the first page was asked with
    scope: str  # Scope.digest() of the caller
    start: datetime
    end: datetime
    position: Mapping[str, Any]  # where the next page resumes (JSON; the report service reads it)
    expires: datetime
    carried: Mapping[str, Any] = field(default_factory=dict)  # the first page's whole-result figures (JSON)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: str) -> bytes:
    return hmac.new(key, body.encode(), hashlib.sha256).digest()


def seal(key: bytes, token: PageToken) -> str:
    payload = {"v": TOKEN_VERSION, "q": token.query, "s": token.scope, "f": token.start.isoformat(),
               "t": token.end.isoformat(), "p": token.position, "c": token.carried,
               "e": int(token.expires.timestamp())}
    body = _b64(zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 9))
    text = f"{body}.{_b64(_mac(key, body))}"
    if len(text) > MAX_TOKEN:  # never hand out a token open_token would refuse
        raise ValueError(f"page token of {len(text)} characters exceeds {MAX_TOKEN}")
    return text


def open_token(key: bytes, text: str, now: datetime) -> PageToken:
    """The verified token; ``InvalidRequestError`` naming ``next`` when it is not one of ours or expired."""
    body, dot, signature = text.strip().partition(".")
    invalid = InvalidRequestError(PARAMETER, "not a valid page token (altered, truncated or issued elsewhere); "
                                             "start again without it")
    if not dot or len(text) > MAX_TOKEN:
        raise invalid
    try:
        supplied = _unb64(signature)
    except (binascii.Error, ValueError):
        raise invalid from None
    if not hmac.compare_digest(supplied, _mac(key, body)):
        raise invalid
    try:
        # signed by us, so the size is ours too; still bounded, as any decompression should be
        payload = json.loads(zlib.decompressobj().decompress(_unb64(body), 1 << 20))
        if payload["v"] != TOKEN_VERSION or not isinstance(payload["p"], dict) or not isinstance(payload["c"], dict):
            raise ValueError("version")
        token = PageToken(str(payload["q"]), str(payload["s"]), datetime.fromisoformat(payload["f"]),
                          datetime.fromisoformat(payload["t"]), payload["p"],
                          datetime.fromtimestamp(int(payload["e"]), UTC), payload["c"])
    except (ValueError, KeyError, TypeError, zlib.error):
        raise invalid from None
    if token.expires <= now:
        raise InvalidRequestError(PARAMETER, "the page token has expired; start again without it")
    return token


def check_binding(token: PageToken, query: str, scope: str) -> None:
    """403 when the token was issued to another caller scope; 400 when it continues another query."""
    if not hmac.compare_digest(token.scope, scope):
        raise ForbiddenError("this page token was issued to another caller (or for other access rights); "
                             "start again without it")
    if not hmac.compare_digest(token.query, query):
        raise InvalidRequestError(PARAMETER, "this page token belongs to a different query; repeat the "
                                             "parameters of the first page unchanged (pageSize may differ)")
