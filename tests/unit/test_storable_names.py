"""Names Table Storage cannot hold as they are: shortened forms and keys that never collide."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from shared.adapters.table_limits import entity_problem
from shared.core.keys import (
    MAX_NAME_UTF16,
    MAX_PART,
    encode_part,
    partition_key,
    row_key,
    same_stored_name,
    shortened_digest,
    storable_key,
    storable_name,
    utf16_length,
)
from shared.core.usage import Granularity, UsageKey

UNSTORABLE = ["x" * (MAX_NAME_UTF16 + 1), "😀" * (MAX_NAME_UTF16 // 2 + 1), "lone\ud800", "\udfff" * 3]
STORABLE = ["", "gpt-4o", "dep\u2028line\u2029para", "ctl\x01\x7f", "é漢字😀", "a/b#c?d\\e", "y" * MAX_NAME_UTF16]


@pytest.mark.parametrize("name", UNSTORABLE)
def test_an_unstorable_name_gets_a_marked_storable_form(name: str) -> None:
    short = storable_name(name)
    full_hash = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    assert short != name and shortened_digest(short) == full_hash
    assert utf16_length(short) <= MAX_NAME_UTF16 and entity_problem({"PartitionKey": "p", "RowKey": "r",
                                                                     "Name": short}) is None
    assert storable_name(short) == short  # idempotent: a row read back keeps the key it was written with
    assert same_stored_name(short, name) and not same_stored_name(name, name)


@pytest.mark.parametrize("name", STORABLE)
def test_a_storable_name_is_kept_as_it_is(name: str) -> None:
    assert storable_name(name) == name and shortened_digest(name) is None


def test_names_sharing_a_long_prefix_stay_apart() -> None:
    one, two = "A" * 5000 + "-one", "A" * 5000 + "-two"
    assert storable_name(one) != storable_name(two)
    key = UsageKey("s", "p", one, "d")
    assert storable_key(key) == UsageKey("s", "p", storable_name(one), "d")
    at = datetime(2026, 11, 1, tzinfo=UTC)
    assert row_key(Granularity.HOUR, at, key) != row_key(Granularity.HOUR, at, UsageKey("s", "p", two, "d"))


def test_no_short_name_can_take_the_key_of_a_long_one() -> None:
    long_name = "S" * 300
    forged = encode_part(long_name)  # spelled exactly like the long name's key
    assert len(forged) <= MAX_PART and "%~" in forged
    assert encode_part(forged) != forged and partition_key(forged) != partition_key(long_name)
    assert encode_part("S" * 300 + "x") != encode_part(long_name)


def test_keys_of_lone_surrogates_are_valid_keys() -> None:
    key = partition_key("team\ud800")
    assert entity_problem({"PartitionKey": key, "RowKey": "r"}) is None
