"""Continuation tokens of the usage report: opaque to callers, signed, bound to query and caller.

A token is ``base64url(payload) + "." + base64url(HMAC-SHA256(key, payload))``.  The payload holds
a digest of the query parameters, a digest of the caller's scope, the resolved time window (so
every page reads the same window even when ``to`` defaulted to "now"), the sort key of the last
row returned (keyset paging: rows written between two pages never shift or repeat rows) and an
expiry.  The payload is not secret — it holds nothing the caller did not send or receive — but
any change to it breaks the signature, and a valid token only ever continues the same query for
the same caller scope.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.errors import ForbiddenError, InvalidRequestError

TOKEN_VERSION = 1
TOKEN_TTL = timedelta(hours=1)
MAX_TOKEN = 4096
PARAMETER = "next"


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
    after: tuple[str, ...]  # sort key of the last row already returned
    expires: datetime


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: str) -> bytes:
    return hmac.new(key, body.encode(), hashlib.sha256).digest()


def seal(key: bytes, token: PageToken) -> str:
    payload = {"v": TOKEN_VERSION, "q": token.query, "s": token.scope, "f": token.start.isoformat(),
               "t": token.end.isoformat(), "a": list(token.after), "e": int(token.expires.timestamp())}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_b64(_mac(key, body))}"


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
        payload = json.loads(_unb64(body))
        token = PageToken(str(payload["q"]), str(payload["s"]), datetime.fromisoformat(payload["f"]),
                          datetime.fromisoformat(payload["t"]), tuple(str(a) for a in payload["a"]),
                          datetime.fromtimestamp(int(payload["e"]), UTC))
        if payload["v"] != TOKEN_VERSION:
            raise ValueError("version")
    except (ValueError, KeyError, TypeError):
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
