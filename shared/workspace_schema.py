"""Log Analytics table schemas (``queries/schemas/*.json``), shared by the local workspace and
the KQL analyzer check so that the two can never drift."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from shared.queries import QUERIES_DIR

SCHEMAS_DIR = QUERIES_DIR / "schemas"


@dataclass(frozen=True)
class Column:
    name: str
    kql_type: str


@cache
def table_schemas() -> dict[str, tuple[Column, ...]]:
    tables = {}
    for path in sorted(SCHEMAS_DIR.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        tables[doc["table"]] = tuple(Column(c["name"], c["type"]) for c in doc["columns"])
    return tables
