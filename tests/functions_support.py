"""The Functions app's functions, indexed the way the host indexes them, once per test process.

Both tiers use it (tests/unit checks the bindings, tests/integration calls the functions): it lives in
one module so there is one cache, since indexing ``function_app.app`` a second time in a process fails
("not a unique function name")."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def functions() -> dict[str, Any]:
    import function_app

    by_name: dict[str, Any] = {}
    for function in function_app.app.get_functions():
        name = function.get_function_name()
        assert name is not None
        by_name[name] = function
    return by_name
