"""Table Storage keys and stored names built from untrusted names (subscription ids, model names).

**Keys.**  PartitionKey/RowKey may not contain ``/ \\ # ?`` or control characters and are capped at
1 KiB (Azurite: 512 UTF-16 characters).  A name is percent-encoded (UTF-8, lone surrogates
included) into a safe alphabet; a long one keeps a readable prefix and ends in ``%~`` plus a hash
of the *whole* name.  Encoding always writes ``%`` followed by two hex digits, so ``%~`` never
appears in the key of a short name: no name, however crafted, gets the key of another (short
names are encoded one-to-one, long ones are told apart by a 128-bit SHA-256 prefix).

**Stored names.**  A string property holds at most 64 KiB counted in UTF-16, and text with an
unpaired surrogate is not valid UTF-16 at all.  A name that cannot be stored as it is (longer than
:data:`MAX_NAME_UTF16` or not valid text) is replaced everywhere, key included, by its *shortened
form*: a prefix, ``…``, and ``[sha256:<hash of the full name>]``.  The shortened form is itself a
storable name (shortening is idempotent), so rows read back carry the same names as rows just
built; two different long names keep two different forms.  Readers that look a record up through
a key compare the stored name with the one they asked for (:func:`same_stored_name`): a key can
only ever answer for its own name.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from shared.core.usage import Granularity, UsageKey

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~@:+=,;!$()*")
# Characters of one encoded name. The 1 KiB key limit counts UTF-16, i.e. 512 characters (Azurite
# refuses a 600-character RowKey): a period code and three parts of 120 stay under it.
MAX_PART = 120
SEPARATOR = "|"  # not in _SAFE, so parts can never run into each other
GRANULARITY_CODE = {Granularity.HOUR: "h", Granularity.DAY: "d", Granularity.MONTH: "m"}
LONG_MARK = "%~"  # never produced by percent-encoding (always %XX): a shortened key is unforgeable
KEY_DIGEST = 32  # hex characters of SHA-256 in a shortened key (128 bits)

# A stored name: far above any real APIM, model or deployment name (≤ 256), far below the 32,768
# UTF-16 units of a string property, so four names keep a usage row small.
MAX_NAME_UTF16 = 4096
_SHORTENED = re.compile(r"…\[sha256:([0-9a-f]{64})\]\Z")
_SHORT_PREFIX = 200  # characters of the name kept before the mark


def _utf8(name: str) -> bytes:
    """UTF-8 of any Python string: a lone surrogate (possible in JSON from a log) is kept, not refused."""
    return name.encode("utf-8", "surrogatepass")


def name_digest(name: str) -> str:
    return hashlib.sha256(_utf8(name)).hexdigest()


def utf16_length(text: str) -> int:
    """What Table Storage counts: UTF-16 code units (a character above U+FFFF counts twice)."""
    if text.isascii():  # the common case, without encoding anything
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def has_lone_surrogate(text: str) -> bool:
    """A surrogate code point in a Python string (UTF-8 cannot encode one) is not valid UTF-16 text."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def encode_part(name: str) -> str:
    encoded = "".join(ch if ch in _SAFE else "".join(f"%{b:02X}" for b in _utf8(ch)) for ch in name)
    if len(encoded) <= MAX_PART:
        return encoded
    digest = name_digest(name)[:KEY_DIGEST]
    return f"{encoded[:MAX_PART - KEY_DIGEST - len(LONG_MARK)]}{LONG_MARK}{digest}"


def decode_part(encoded: str) -> str:
    """Inverse of :func:`encode_part` for names that were not shortened."""
    raw = bytearray()
    i = 0
    while i < len(encoded):
        if encoded[i] == "%":
            raw.append(int(encoded[i + 1:i + 3], 16))
            i += 3
        else:
            raw.extend(encoded[i].encode("ascii"))
            i += 1
    return raw.decode("utf-8", "surrogatepass")


def is_storable_name(name: str) -> bool:
    return utf16_length(name) <= MAX_NAME_UTF16 and not has_lone_surrogate(name)


def storable_name(name: str) -> str:
    """``name`` if a string property can hold it, else its shortened form (see the module text)."""
    if is_storable_name(name):
        return name
    prefix = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in name[:_SHORT_PREFIX])
    return f"{prefix}…[sha256:{name_digest(name)}]"


def shortened_digest(name: str) -> str | None:
    """The full name's hash when ``name`` is a shortened form, else ``None``."""
    match = _SHORTENED.search(name)
    return match.group(1) if match else None


def storable_key(key: UsageKey) -> UsageKey:
    """The usage key as it is stored and read back (every name storable)."""
    names = (key.subscription_id, key.product_id, key.model, key.deployment, key.apim_service)
    if all(is_storable_name(name) for name in names):
        return key
    subscription_id, product_id, model, deployment, apim_service = (storable_name(name) for name in names)
    return UsageKey(subscription_id, product_id, model, deployment, apim_service, key.service_tier)


def same_stored_name(stored: object, wanted: str) -> bool:
    """Whether a record found through ``wanted``'s key really is ``wanted``'s (never another name's
    that happens to share the key)."""
    return isinstance(stored, str) and stored == storable_name(wanted)


def partition_key(subscription_id: str) -> str:
    return encode_part(storable_name(subscription_id)) or "%00"


def period_code(granularity: Granularity, start: datetime) -> str:
    """Sortable text of a period: ``h|2026-11-25T13``, ``d|2026-11-25``, ``m|2026-11``."""
    fmt = {Granularity.HOUR: "%Y-%m-%dT%H", Granularity.DAY: "%Y-%m-%d", Granularity.MONTH: "%Y-%m"}[granularity]
    return f"{GRANULARITY_CODE[granularity]}{SEPARATOR}{start.strftime(fmt)}"


def row_key(granularity: Granularity, start: datetime, key: UsageKey) -> str:
    """``h|2026-11-25T13|model|deployment|product``, then ``|service`` when the row names an APIM
    service: a row without one keeps the key it had before services were a dimension, so older rows
    and rows of merged services are the same rows.  A row of a service tier (``priority``) ends in
    ``|service|tier``, its service part empty when it names none: a tier is always the seventh part,
    so it is never read as a service of that name, and default-tier rows keep their keys."""
    stored = storable_key(key)
    parts = [period_code(granularity, start), encode_part(stored.model), encode_part(stored.deployment),
             encode_part(stored.product_id)]
    if stored.apim_service or stored.service_tier:
        parts.append(encode_part(stored.apim_service))
    if stored.service_tier:
        parts.append(encode_part(stored.service_tier))
    return SEPARATOR.join(parts)


def prefix_range(prefix: str) -> tuple[str, str]:
    """Key bounds ``[low, high)`` selecting every key that starts with ``prefix`` (its last character
    one up is the first key past them all)."""
    return prefix, f"{prefix[:-1]}{chr(ord(prefix[-1]) + 1)}"


def period_range(granularity: Granularity, start: datetime, end: datetime) -> tuple[str, str]:
    """RowKey bounds ``[low, high)`` selecting every row whose period starts in ``[start, end)``."""
    return period_code(granularity, granularity.ceil(start)), period_code(granularity, granularity.ceil(end))
