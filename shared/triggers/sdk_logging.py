"""The Azure SDK's own loggers at WARNING in the Functions app.

azure-core's ``HttpLoggingPolicy`` logs every storage and Log Analytics request and response at
INFO (URL, headers); the Python worker forwards every record a logger lets through to the host and
Application Insights.  host.json's ``logLevel`` filters by host categories (``Function.<name>.User``
for everything the worker sends), not by Python logger name, so the level is set on the Python
loggers themselves, when the triggers package is imported (once per worker process).
"""

from __future__ import annotations

import logging

QUIET_LOGGERS = ("azure", "azure.core.pipeline.policies.http_logging_policy")


def quiet_azure_sdk() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
