"""The synthetic probe's HTTP side: a small fixed chat completion through the APIM gateway with the
``openai`` package's ``AzureOpenAI`` client, measured and classified.

Time is bounded explicitly: the client's own retries are off (its back-off may honour a
``Retry-After`` of up to a minute); this module retries timeouts, 408/429/5xx itself, and never
starts a try, waits a back-off or reads a streamed chunk past the run's deadline.  Each network
wait (connect, write, each read) is capped by ``min(timeout, time left)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.core.probe import Mode, ProbeAttempt

if TYPE_CHECKING:
    from openai import AzureOpenAI
    from openai.types.chat import ChatCompletionMessageParam

log = logging.getLogger(__name__)

# Fixed, tiny and free of any user data: the probe measures the path, not the model.
PROBE_MESSAGES: tuple[dict[str, str], ...] = (
    {"role": "system", "content": "You are a health check. Answer with one word."},
    {"role": "user", "content": "Reply with the word: ok"},
)
PROBE_MAX_TOKENS = 5
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_BACKOFF_SECONDS = 4.0
DUMMY_API_KEY = "unused-see-Ocp-Apim-Subscription-Key"


@dataclass(frozen=True)
class ProbeTarget:
    endpoint: str  # APIM gateway URL (azure_endpoint)
    api_version: str
    subscription_key: str
    key_header: str = "api-key"  # or Ocp-Apim-Subscription-Key
    marker_header: str = "x-chargeback-probe"
    timeout_seconds: float = 10.0
    max_retries: int = 1


@dataclass(frozen=True)
class _Try:
    success: bool
    status: int | None
    latency_ms: float
    ttft_ms: float | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    region: str | None = None
    request_id: str | None = None
    error: str | None = None
    retry_after: float | None = None


def build_client(target: ProbeTarget) -> AzureOpenAI:
    from openai import AzureOpenAI

    headers = {target.marker_header: "1"}
    api_key = target.subscription_key
    if target.key_header.lower() == "ocp-apim-subscription-key":
        headers["Ocp-Apim-Subscription-Key"] = target.subscription_key
        api_key = DUMMY_API_KEY  # the client insists on a credential; APIM reads the header above
    # max_retries=0: retries (and their waits) are this module's, bounded by the run's deadline.
    return AzureOpenAI(azure_endpoint=target.endpoint, api_version=target.api_version, api_key=api_key,
                       default_headers=headers, max_retries=0, timeout=target.timeout_seconds)


class OpenAIProber:
    """Implements the ``Prober`` port of :mod:`shared.services.probe`."""

    def __init__(self, target: ProbeTarget, client: AzureOpenAI | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.target = target
        self._client = client
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep

    @property
    def client(self) -> AzureOpenAI:
        if self._client is None:
            self._client = build_client(self.target)
        return self._client

    def describe(self) -> str:
        return f"APIM gateway {self.target.endpoint}"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def probe(self, deployment: str, mode: Mode, deadline: float, run_id: str) -> ProbeAttempt:
        """One probe call (with its retries); ``deadline`` is a ``time.monotonic()`` value."""
        started = self._clock()
        tries = 0
        while True:
            tries += 1
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                result = _Try(False, None, 0.0, error="ProbeDeadlineExceeded")
                break
            result = self._once(deployment, mode, min(self.target.timeout_seconds, remaining), deadline)
            if result.success or tries > self.target.max_retries or not _retryable(result):
                break
            wait = result.retry_after if result.retry_after is not None else min(
                MAX_BACKOFF_SECONDS, 0.25 * 2 ** (tries - 1))
            if self._monotonic() + wait >= deadline:
                break  # no time left to wait and try again: report what we have
            log.info("probe %s (%s) try %d failed (%s); retrying in %.2fs", deployment, mode, tries,
                     result.error or result.status, wait)
            self._sleep(wait)
        fields = {k: v for k, v in result.__dict__.items() if k != "retry_after"}
        return ProbeAttempt(at=started, deployment=deployment, mode=mode, run_id=run_id, tries=tries, **fields)

    # -- one try ------------------------------------------------------------------------------------
    def _once(self, deployment: str, mode: Mode, timeout: float, deadline: float) -> _Try:
        import openai

        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": PROBE_MESSAGES[0]["content"]},
            {"role": "user", "content": PROBE_MESSAGES[1]["content"]},
        ]
        start = time.perf_counter()
        try:
            if mode == "stream":
                return self._stream(deployment, messages, timeout, deadline, start)
            raw = self.client.chat.completions.with_raw_response.create(
                model=deployment, messages=messages, max_tokens=PROBE_MAX_TOKENS, timeout=timeout)
            completion = raw.parse()
            latency = _ms_since(start)
            usage = completion.usage
            return _Try(True, raw.status_code, latency, model=completion.model or None,
                        prompt_tokens=usage.prompt_tokens if usage else None,
                        completion_tokens=usage.completion_tokens if usage else None,
                        **_header_fields(raw.headers))
        except openai.APIStatusError as exc:
            return _Try(False, exc.status_code, _ms_since(start), error=type(exc).__name__,
                        retry_after=_retry_after(exc.response.headers), **_header_fields(exc.response.headers))
        except openai.APIError as exc:  # timeouts, connection failures, broken streams
            return _Try(False, None, _ms_since(start), error=type(exc).__name__)
        except openai.OpenAIError as exc:
            return _Try(False, None, _ms_since(start), error=type(exc).__name__)

    def _stream(self, deployment: str, messages: list[ChatCompletionMessageParam], timeout: float,
                deadline: float, start: float) -> _Try:
        raw = self.client.chat.completions.with_raw_response.create(
            model=deployment, messages=messages, max_tokens=PROBE_MAX_TOKENS, timeout=timeout, stream=True,
            stream_options={"include_usage": True})
        headers = _header_fields(raw.headers)
        stream = raw.parse()
        ttft: float | None = None
        model: str | None = None
        prompt = completion = None
        try:
            for chunk in stream:
                if ttft is None and any(choice.delta.content for choice in chunk.choices):
                    ttft = _ms_since(start)
                model = chunk.model or model
                if chunk.usage is not None:
                    prompt, completion = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
                if self._monotonic() > deadline:
                    return _Try(False, raw.status_code, _ms_since(start), ttft_ms=ttft, model=model,
                                error="ProbeDeadlineExceeded", **headers)
        finally:
            stream.close()
        result = _Try(True, raw.status_code, _ms_since(start), ttft_ms=ttft, model=model, prompt_tokens=prompt,
                      completion_tokens=completion, **headers)
        if ttft is None:  # a stream without a single content token did not answer the question
            result = replace(result, success=False, error="EmptyStream")
        return result


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def _header_fields(headers: Mapping[str, str]) -> dict[str, Any]:
    return {"region": headers.get("x-ms-region") or None,
            "request_id": headers.get("apim-request-id") or headers.get("x-request-id") or None}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after-ms")
    try:
        if value is not None:
            return max(0.0, float(value) / 1000)
        value = headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the back-off


def _retryable(result: _Try) -> bool:
    if result.error == "ProbeDeadlineExceeded":
        return False
    return result.status is None or result.status in RETRYABLE_STATUS
