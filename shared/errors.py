"""Every error the application raises on purpose.

Adapters translate SDK exceptions into these (``raise ... from exc``) so that triggers and the
HTTP layer can map them to log lines, exit codes and 4xx responses without knowing any SDK; a
caller tells cases apart by class, never by looking at ``__cause__``.

    ChargebackError                 message safe to show an operator
    ├── SettingError                a setting is missing or malformed (names the key)
    ├── LogSourceError              the log source could not answer
    │   ├── PartialResultError      ... answered only part of a query
    │   └── QueryContractError      ... returned other columns than the code reads
    ├── QueryCheckError             the offline KQL analyzer could not run
    ├── ImportFormatError           a log file cannot be read at all
    ├── StorageError                Table Storage rejected or could not complete an operation
    │   ├── StorageUnavailableError     ... could not be reached at all             (HTTP 503)
    │   ├── NotFoundError               ... the record asked for does not exist
    │   ├── TransactionRejectedError    ... refused a transaction (nothing of it written)
    │   └── ConcurrentUpdateError       ... another run changed the record (ETag)
    │       ├── AlreadyExistsError          ... or created it first
    │       ├── LeaseHeldError              ... another run holds the writer lease
    │       └── LeaseLostError              ... another run took this run's writer lease
    ├── InvalidRequestError         a caller sent a bad parameter (names it)      (HTTP 400)
    ├── NotAuthorizedError          no or bad credentials                         (HTTP 401)
    ├── ForbiddenError              known caller, outside its scope                (HTTP 403)
    ├── DeliveryError               an alert channel did not accept a message
    ├── EnforcementError            changing an APIM subscription's state failed
    └── AlertRunError               alerts failed after the rollup itself finished
"""

from __future__ import annotations


class ChargebackError(Exception):
    """Base of all deliberate errors; the message is safe to show to an operator."""


class SettingError(ChargebackError):
    """A setting is missing or malformed; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"setting {key}: {problem}")
        self.key = key


class LogSourceError(ChargebackError):
    """The log source could not answer a query."""


class PartialResultError(LogSourceError):
    """The log source answered only part of a query; the run must not treat it as complete."""


class QueryContractError(LogSourceError):
    """A query returned columns other than the ones the code reads."""


class QueryCheckError(ChargebackError):
    """The offline KQL analyzer check could not run (node or the analyzer missing, bad input)."""


class ImportFormatError(ChargebackError):
    """A log file given to ``chargeback workspace import`` cannot be read at all (the message names it)."""


class StorageError(ChargebackError):
    """Table Storage rejected or could not complete an operation."""


class StorageUnavailableError(StorageError):
    """Table Storage could not be reached at all."""


class NotFoundError(StorageError):
    """The record (entity) asked for does not exist."""


class TransactionRejectedError(StorageError):
    """The service refused a transaction; none of its operations were written."""


class ConcurrentUpdateError(StorageError):
    """Another run changed a record (the watermark) since this run read it."""


class AlreadyExistsError(ConcurrentUpdateError):
    """Another run created the record this run meant to create (an insert-only write lost the race)."""


class LeaseHeldError(ConcurrentUpdateError):
    """Another rollup or backfill holds the writer lease; this run waited and gave up, writing nothing."""


class LeaseLostError(ConcurrentUpdateError):
    """This run's writer lease expired and another run took it: this run stops before writing."""


class InvalidRequestError(ChargebackError):
    """A caller sent a bad parameter; ``parameter`` names it for the 400 response."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter


class NotAuthorizedError(ChargebackError):
    """The caller has no valid credentials (HTTP 401)."""


class ForbiddenError(ChargebackError):
    """The caller is known but may not see what it asked for (HTTP 403); the message names it."""


class DeliveryError(ChargebackError):
    """An alert channel did not accept a message; the text never holds the channel URL."""

    def __init__(self, message: str, retriable: bool = True) -> None:
        super().__init__(message)
        self.retriable = retriable


class EnforcementError(ChargebackError):
    """Changing an APIM subscription's state failed."""


class AlertRunError(ChargebackError):
    """Quota evaluation, alert delivery or enforcement failed after the rollup itself finished."""
