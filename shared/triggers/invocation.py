"""What every trigger does around its work: telemetry set up on the first invocation, the
invocation id on every log record, one span for the invocation, and buffered telemetry exported
before the host may freeze the instance."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from threading import local
from typing import Any

import azure.functions as func

from shared.services import telemetry
from shared.settings import Settings


class DirectCall(func.Context):
    """The context of a call made without the Functions host (tests, tools): no invocation id."""

    @property
    def invocation_id(self) -> str:
        return ""

    @property
    def thread_local_storage(self) -> Any:
        return local

    @property
    def function_name(self) -> str:
        return ""

    @property
    def function_directory(self) -> str:
        return ""

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


# The host always passes a context (it recognises the ``context: func.Context`` parameter); a
# direct call gets this one.
DIRECT_CALL = DirectCall()


@contextmanager
def invocation(context: func.Context, function: str, settings: Settings) -> Iterator[None]:
    from shared.composition import configure_telemetry  # here, not at import: cold start

    configure_telemetry(settings)
    invocation_id = context.invocation_id or ""
    try:
        with telemetry.invocation(invocation_id), telemetry.span(
                f"function {function}", {"faas.name": function, "faas.invocation_id": invocation_id,
                                         "faas.trigger": "timer"}):
            yield
    finally:
        telemetry.flush()
