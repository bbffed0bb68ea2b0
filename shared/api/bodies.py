"""Request bodies, read the one way every write endpoint reads them."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from shared.errors import InvalidRequestError


async def json_object(request: Request, example: str) -> dict[str, Any]:
    """The body as a JSON object; anything else is a 400 naming ``body`` with ``example``."""
    try:
        body = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequestError("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("body", f"must be a JSON object like {example}")
    return body
