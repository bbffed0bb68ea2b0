"""The Functions app indexes the triggers and bindings the host expects."""

from __future__ import annotations

from tests.functions_support import functions


def test_indexed_bindings() -> None:
    fns = functions()
    assert set(fns) == {"rollup", "probe", "http_app_func"}
    probe = fns["probe"].get_bindings_dict()["bindings"][0]
    assert probe["type"] == "timerTrigger" and probe["schedule"] == "%PROBE_SCHEDULE%"
    timer = fns["rollup"].get_bindings_dict()["bindings"][0]
    assert timer["type"] == "timerTrigger" and timer["schedule"] == "%ROLLUP_SCHEDULE%"
    assert timer["runOnStartup"] is False
    http = fns["http_app_func"].get_bindings_dict()["bindings"][0]
    assert http["type"] == "httpTrigger" and str(http["authLevel"].value) == "function"
