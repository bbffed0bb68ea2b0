"""The query files: present and loadable with their declared result columns."""

from shared.queries import CONTRACTS, QUERIES_DIR, load

QUERY_FILES = sorted(p for p in QUERIES_DIR.rglob("*.kql") if "schemas" not in p.parts)


def test_there_are_queries() -> None:
    assert QUERY_FILES, "no .kql files found"


def test_contract_queries_load() -> None:
    for name in CONTRACTS:
        assert load(name).columns == CONTRACTS[name]
