"""One probe run printed for a person: the attempts table and the run's summary (``chargeback probe``
and the local demo)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from shared.core.probe import ProbeAttempt
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.services.probe import ProbeRunResult


def run_and_print(settings: Settings) -> ProbeRunResult:
    """One probe run with its attempts table and summary on stdout."""
    from shared.composition import probe_service

    service = probe_service(settings)
    try:
        result = service.run()
    finally:
        service.close()
    print(attempts_table(result.attempts))
    print(result.summary())
    return result


def attempts_table(attempts: Sequence[ProbeAttempt]) -> str:
    header = (f"{'deployment':<24}{'mode':<8}{'result':<8}{'status':>7}{'latency ms':>12}{'ttft ms':>10}"
              f"{'tokens':>10}{'tries':>7}  {'model / error':<28}{'request id'}")
    lines = [header, "-" * len(header)]
    for a in attempts:
        tokens = "" if a.prompt_tokens is None else f"{a.prompt_tokens}+{a.completion_tokens or 0}"
        lines.append(f"{a.deployment[:23]:<24}{a.mode:<8}{'ok' if a.success else 'FAILED':<8}{a.status or '-':>7}"
                     f"{a.latency_ms:>12.1f}{'' if a.ttft_ms is None else f'{a.ttft_ms:.1f}':>10}{tokens:>10}"
                     f"{a.tries:>7}  {(a.error or a.model or '')[:27]:<28}{a.request_id or ''}")
    return "\n".join(lines)
