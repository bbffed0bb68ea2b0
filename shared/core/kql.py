"""``declare query_parameters`` handling for engines that cannot bind parameter values.

The Log Analytics query API has no parameters field.  Values still never get formatted into the
query body: they become the *defaults* of the parameters the query itself declares, each rendered
by a strict encoder for its declared type (a string literal with every special character escaped,
a datetime from an aware ``datetime`` only, ...).  A value that cannot be encoded is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

_DECLARE = re.compile(r"declare\s+query_parameters\s*\((?P<body>[^)]*)\)\s*;", re.IGNORECASE)
_PARAM = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*:\s*(?P<type>[A-Za-z]+)\s*(?:=\s*(?P<default>.+?))?\s*$")


@dataclass(frozen=True)
class Parameter:
    name: str
    kql_type: str
    default: str | None


def declared_parameters(query: str) -> list[Parameter]:
    """The parameters of the query's ``declare query_parameters(...)`` statement, in order."""
    match = _DECLARE.search(query)
    if match is None:
        return []
    params = []
    for part in _split_top_level(match.group("body")):
        parsed = _PARAM.match(part)
        if parsed is None:
            raise ValueError(f"cannot read query parameter declaration {part.strip()!r}")
        params.append(Parameter(parsed["name"], parsed["type"].lower(), parsed["default"]))
    return params


def _split_top_level(body: str) -> list[str]:
    # Defaults can contain commas only inside quotes or parentheses.
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for ch in body:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current))
    return parts


def literal(kql_type: str, value: object) -> str:
    """``value`` as a KQL literal of ``kql_type``; raises ``ValueError`` when it is not one."""
    if kql_type == "string":
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {type(value).__name__}")
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise ValueError("control characters are not accepted in a string parameter")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if kql_type == "datetime":
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("expected a timezone-aware datetime")
        return "datetime(" + value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + ")"
    if kql_type in ("long", "int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {type(value).__name__}")
        return f"{kql_type}({value})"
    if kql_type in ("real", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError("expected a finite number")
        return f"real({float(value)!r})"
    if kql_type == "bool":
        if not isinstance(value, bool):
            raise ValueError("expected a bool")
        return "true" if value else "false"
    raise ValueError(f"parameter type {kql_type!r} is not supported")


def bind_as_defaults(query: str, values: Mapping[str, object]) -> str:
    """The query with its declaration rewritten so each declared parameter defaults to its value."""
    match = _DECLARE.search(query)
    params = declared_parameters(query)
    unknown = set(values) - {p.name for p in params}
    if unknown:
        raise ValueError(f"values given for undeclared parameters: {', '.join(sorted(unknown))}")
    if match is None:
        return query
    rendered = []
    for param in params:
        if param.name in values:
            rendered.append(f"{param.name}:{param.kql_type} = {literal(param.kql_type, values[param.name])}")
        elif param.default is not None:
            rendered.append(f"{param.name}:{param.kql_type} = {param.default}")
        else:
            raise ValueError(f"no value for declared parameter {param.name}")
    declaration = "declare query_parameters(" + ", ".join(rendered) + ");"
    return query[:match.start()] + declaration + query[match.end():]
