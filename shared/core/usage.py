"""Usage rows and the rules that merge them: hour -> day -> month.

A row is one subscription x product x model x deployment x APIM service x period.  The service
(the gateway's APIM instance, from the log row's ``_ResourceId``) keeps two gateways' subscriptions
of the same name apart; it is ``""`` for rows that have none: logs without a resource id, rows
stored before the service was a dimension, or every row when services are merged
(``APIM_SERVICES_MERGED``).  It is also split by the *service tier* the responses reported:
``"priority"`` rows hold the requests a response said were served at priority (billed by the Priority
meters), ``""`` rows everything else (default tier, a downgraded request, or no body saying).  Rows of a coarser
granularity are always *derived* from the finer rows already stored, never accumulated run by run,
which is what makes a rerun of any window give identical results.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.core.months import next_month

UNATTRIBUTED = "unattributed"  # request with no APIM subscription (e.g. an open API or a 401)
UNKNOWN = "unknown"  # model or deployment the logs did not name
PROBE = "synthetic-probe"  # synthetic probe traffic: reported on its own, never charged
PRIORITY_TIER = "priority"  # UsageKey.service_tier of requests a response said were served at priority


def is_chargeable(subscription_id: str) -> bool:
    """Whether a subscription's usage is charged: everything but the synthetic probe's traffic
    (reported on its own in usage reports, never on a chargeback line)."""
    return subscription_id != PROBE


def is_team_subscription(subscription_id: str) -> bool:
    """A real APIM subscription a team holds: chargeable and attributed.  Only these fall under
    the default (``*``) quota and can be enforced on; there is no one to suspend for the rest."""
    return is_chargeable(subscription_id) and subscription_id != UNATTRIBUTED


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"

    def period_start(self, moment: datetime) -> datetime:
        moment = moment.astimezone(UTC)
        if self is Granularity.HOUR:
            return moment.replace(minute=0, second=0, microsecond=0)
        if self is Granularity.DAY:
            return moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    def ceil(self, moment: datetime) -> datetime:
        """The first period start at or after ``moment``."""
        start = self.period_start(moment)
        if start == moment.astimezone(UTC):
            return start
        if self is Granularity.HOUR:
            return start + timedelta(hours=1)
        if self is Granularity.DAY:
            return start + timedelta(days=1)
        return next_month(start)


@dataclass(frozen=True)
class Counters:
    """What a usage row counts.  Token counts nest as the OpenAI usage object nests them, whatever
    the provider's own shape (Anthropic's ``input_tokens`` excludes its cache reads and writes: they
    are added back into ``prompt_tokens`` when the row is built):

    * ``prompt_tokens`` = every input token: text and audio, cached, cache writes included;
      ``cached_tokens`` ⊆ it (cache reads, audio included), ``cache_write_tokens`` ⊆ it,
      ``audio_prompt_tokens`` ⊆ it (cached audio included), ``cached_audio_tokens`` ⊆ both.
    * ``completion_tokens`` = every output token; ``audio_completion_tokens`` and
      ``reasoning_tokens`` ⊆ it (reasoning is billed as output: shown, not charged twice).
    """

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    streamed_requests: int = 0
    error_requests: int = 0
    unmetered_requests: int = 0  # successful calls no log source had token counts for
    unmetered_streamed: int = 0  # ...of which streamed without stream_options.include_usage
    unmetered_truncated: int = 0  # ...of which the logged body was cut before its usage object
    reasoning_tokens: int = 0
    audio_prompt_tokens: int = 0
    cached_audio_tokens: int = 0
    audio_completion_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Counters) -> Counters:
        return Counters(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


COUNTER_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Counters))


@dataclass(frozen=True)
class UsageKey:
    subscription_id: str
    product_id: str
    model: str
    deployment: str
    apim_service: str = ""  # "" = no service named (or services merged)
    # The tier the responses reported (PRIORITY_TIER when served at priority; "" = default or not said):
    # priority tokens are billed by other meters, so they are rows of their own.
    service_tier: str = ""


@dataclass(frozen=True)
class UsageRow:
    granularity: Granularity
    period_start: datetime
    key: UsageKey
    counters: Counters

    @property
    def subscription_id(self) -> str:
        return self.key.subscription_id


def normalize_key(subscription_id: Any, product_id: Any, model: Any, deployment: Any,
                  apim_service: Any = "", service_tier: Any = "") -> UsageKey:
    """Empty or null names land in explicit buckets: a row is never dropped for lack of a name.
    A service name is lower-cased (Azure resource names are case-insensitive); a service tier is
    :data:`PRIORITY_TIER` or ``""`` (any other answer is billed at the standard rate)."""

    def text(value: Any, fallback: str) -> str:
        value = "" if value is None else str(value).strip()
        return value or fallback

    return UsageKey(text(subscription_id, UNATTRIBUTED), text(product_id, ""),
                    text(model, UNKNOWN), text(deployment, UNKNOWN), text(apim_service, "").lower(),
                    PRIORITY_TIER if text(service_tier, "").lower() == PRIORITY_TIER else "")


def merge(rows: Iterable[UsageRow], granularity: Granularity) -> list[UsageRow]:
    """Sum ``rows`` into ``granularity`` periods, keeping every key separate."""
    totals: dict[tuple[datetime, UsageKey], Counters] = {}
    for row in rows:
        slot = (granularity.period_start(row.period_start), row.key)
        totals[slot] = totals.get(slot, Counters()) + row.counters
    return [UsageRow(granularity, start, key, counters)
            for (start, key), counters in sorted(totals.items(), key=_slot_order)]


def month_after_write(others: Iterable[UsageRow], stored: Iterable[UsageRow],
                      written: list[UsageRow]) -> list[UsageRow]:
    """The month rows storage holds once the ``written`` day rows replace the ``stored`` ones of the
    same (day, key): ``others`` (month sums of the days the write does not touch), the stored day rows
    it leaves, and the written ones (all under stored names)."""
    replaced = {(row.period_start, row.key) for row in written}
    kept = [row for row in stored if (row.period_start, row.key) not in replaced]
    return merge([*others, *kept, *written], Granularity.MONTH)


def _slot_order(item: tuple[tuple[datetime, UsageKey], Counters]) -> tuple[datetime, str, str, str, str, str, str]:
    (start, key), _ = item
    return (start, key.subscription_id, key.product_id, key.model, key.deployment, key.apim_service,
            key.service_tier)


def touched_periods(rows: Iterable[UsageRow], granularity: Granularity) -> set[tuple[str, datetime]]:
    """(subscription, period start) pairs at ``granularity`` that ``rows`` fall into."""
    return {(row.subscription_id, granularity.period_start(row.period_start)) for row in rows}


def total(rows: Iterable[UsageRow]) -> Counters:
    result = Counters()
    for row in rows:
        result = result + row.counters
    return result


def counters_from(mapping: Mapping[str, Any]) -> Counters:
    """Counters from a mapping keyed by counter name; absent counters are zero."""
    return Counters(**{name: int(mapping.get(name) or 0) for name in COUNTER_NAMES})
