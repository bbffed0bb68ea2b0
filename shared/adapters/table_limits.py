"""Every Table Storage limit an entity can break, checked before it is sent.

A refused operation fails its whole transaction (every entity of it, not only the bad one), so an
entity that cannot be stored is found here and set aside (quarantined) instead of being sent.
Sizes follow the service's own accounting (learn.microsoft.com, "Understanding the Table service
data model"): strings count UTF-16 code units, an entity at most 1 MiB, at most 255 properties
with PartitionKey, RowKey and Timestamp, a key at most 1 KiB (512 UTF-16 units; Azurite refuses
more) without ``/ \\ # ?`` or control characters.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from shared.core.keys import has_lone_surrogate, utf16_length

MAX_PROPERTIES = 255  # PartitionKey, RowKey and Timestamp included
MAX_ENTITY_BYTES = 1024 * 1024
MAX_KEY_UTF16 = 512
MAX_STRING_UTF16 = 32 * 1024  # 64 KiB
MAX_BINARY_BYTES = 64 * 1024
MAX_NAME = 255
_PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FORBIDDEN_IN_KEY = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
_VALID_NAMES: set[str] = set()  # property names already checked (a table's entities share a few)


def entity_problem(entity: Mapping[str, Any]) -> str | None:
    """Why the service would refuse ``entity``, or ``None`` when it fits every limit."""
    for key in ("PartitionKey", "RowKey"):
        problem = _key_problem(key, entity.get(key))
        if problem:
            return problem
    count, size = 1, 4 + 2 * (utf16_length(entity["PartitionKey"]) + utf16_length(entity["RowKey"]))  # + Timestamp
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey"):
            count += 1
            continue
        if type(value) is tuple or hasattr(value, "edm_type"):  # EntityProperty(value, type)
            value = value[0]
        if value is None:
            continue  # not sent
        count += 1
        if name not in _VALID_NAMES:
            if not isinstance(name, str) or len(name) > MAX_NAME or not _PROPERTY_NAME.match(name):
                return f"property name {name!r} is not a valid identifier of at most {MAX_NAME} characters"
            _VALID_NAMES.add(name)
        value_size, problem = _value_size(name, value)
        if problem:
            return problem
        size += 8 + 2 * len(name) + value_size
    if count > MAX_PROPERTIES:
        return f"{count} properties with Timestamp (at most {MAX_PROPERTIES})"
    if size > MAX_ENTITY_BYTES:
        return f"entity of {size:,} bytes (at most {MAX_ENTITY_BYTES:,})"
    return None


def _key_problem(name: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return f"{name} must be a string, not {type(value).__name__}"
    if utf16_length(value) > MAX_KEY_UTF16:
        return f"{name} of {utf16_length(value)} UTF-16 units (at most {MAX_KEY_UTF16})"
    found = _FORBIDDEN_IN_KEY.search(value)
    if found:
        return f"{name} holds the forbidden character U+{ord(found.group(0)):04X}"
    if has_lone_surrogate(value):
        return f"{name} holds an unpaired surrogate (not valid UTF-16)"
    return None


def _value_size(name: str, value: Any) -> tuple[int, str | None]:
    kind = type(value)
    if kind is int or kind is float:
        return 8, None
    if kind is str:
        units = utf16_length(value)
        if units > MAX_STRING_UTF16:
            return 0, f"property {name}: string of {units:,} UTF-16 units (at most {MAX_STRING_UTF16:,})"
        if has_lone_surrogate(value):
            return 0, f"property {name}: unpaired surrogate (not valid UTF-16)"
        return 4 + 2 * units, None
    if kind is bool:
        return 1, None
    if isinstance(value, bytes):
        if len(value) > MAX_BINARY_BYTES:
            return 0, f"property {name}: {len(value):,} bytes of binary (at most {MAX_BINARY_BYTES:,})"
        return 4 + len(value), None
    if isinstance(value, uuid.UUID):
        return 16, None
    return 8, None  # datetime, and any type the serializer refuses (it says so itself)
