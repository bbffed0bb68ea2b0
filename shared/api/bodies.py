"""Request bodies, read the one way every write endpoint reads them: at most :data:`MAX_BODY` bytes.

The limit is checked before the body is read whole: a ``Content-Length`` over it is refused at
once, and a body sent without one (chunked) is counted as it arrives and refused as soon as it
passes the limit (413, the JSON error shape).  Every write body of this API is a small JSON object.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from shared.api.contract import BodyTooLargeError
from shared.errors import InvalidRequestError

MAX_BODY = 64 * 1024  # bytes


async def capped_body(request: Request) -> bytes:
    """The body, or a 413 naming ``body`` once it is (or says it will be) over :data:`MAX_BODY`."""
    too_large = BodyTooLargeError("body", f"larger than {MAX_BODY // 1024} KiB ({MAX_BODY} bytes); send less")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise InvalidRequestError("body", "Content-Length is not a number of bytes")
        if int(declared) > MAX_BODY:
            raise too_large
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_BODY:
            raise too_large
    return bytes(received)


async def json_object(request: Request, example: str) -> dict[str, Any]:
    """The body as a JSON object; anything else is a 400 naming ``body`` with ``example``."""
    try:
        body = json.loads(await capped_body(request) or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequestError("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("body", f"must be a JSON object like {example}")
    return body
