"""The local run's live part: demo traffic from several subscription keys sent through the dev
gateway with the ``openai`` client (and Anthropic Messages and Gemini calls over plain HTTP), then one
synthetic probe run against it.  Development only."""

from __future__ import annotations

import random
from collections import Counter
from typing import TYPE_CHECKING

from shared.settings import Settings
from shared.tooling.dev_gateway import PROBE_KEY, PROBE_SUBSCRIPTION, DevGateway

if TYPE_CHECKING:
    from openai import AzureOpenAI

API_VERSION = "2024-10-21"
PROBE_DEPLOYMENTS = "gpt-4o,gpt-4o-mini"
TOPICS = ("summarise the meeting notes", "draft a reply to the customer", "classify this ticket",
          "explain the invoice line", "translate the release notes", "list the open risks")


def _client(gateway: DevGateway, key: str) -> AzureOpenAI:
    from openai import AzureOpenAI

    return AzureOpenAI(azure_endpoint=gateway.url, api_key=key, api_version=API_VERSION, max_retries=0, timeout=10)


def send_demo_traffic(gateway: DevGateway, seed: int) -> dict[str, Counter[int]]:
    """Chat, streamed chat (with usage), embeddings and one long prompt from the team keys, the
    low-TPM sandbox key until it gets 429, and one call with a bad key (401).  Returns the HTTP
    statuses seen per subscription."""
    import openai

    rng = random.Random(seed)
    statuses: dict[str, Counter[int]] = {}
    teams = [(key, account) for key, account in gateway.config.keys.items() if key != PROBE_KEY]

    def call(subscription: str, client: AzureOpenAI, kind: str, deployment: str, text: str) -> None:
        try:
            if kind == "embeddings":
                client.embeddings.create(model=deployment, input=[text, text[::-1]])
            elif kind == "stream":
                for _ in client.chat.completions.create(model=deployment, messages=[{"role": "user", "content": text}],
                                                        max_tokens=200, stream=True,
                                                        stream_options={"include_usage": True}):
                    pass
            else:
                client.chat.completions.create(model=deployment, messages=[
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": text}], max_tokens=300)
            status = 200
        except openai.APIStatusError as exc:
            status = exc.status_code
        statuses.setdefault(subscription, Counter())[status] += 1

    for key, account in teams:
        with _client(gateway, key) as client:
            if account.tpm < 5000:  # the small sandbox quota: keep asking until APIM says 429
                for _ in range(8):
                    call(account.subscription, client, "chat", "gpt-4o-mini", " ".join([rng.choice(TOPICS)] * 40))
                    if statuses[account.subscription][429]:
                        break
                continue
            for _ in range(4):
                call(account.subscription, client, "chat", rng.choice(("gpt-4o", "gpt-4o-mini")),
                     f"{rng.choice(TOPICS)} ({rng.randint(1, 999)})")
            call(account.subscription, client, "stream", "gpt-4o-mini", rng.choice(TOPICS))
            call(account.subscription, client, "embeddings", "text-embedding-3-small", rng.choice(TOPICS))
        if account.subscription == "team-search":  # a long prompt: chunked LLM log, body cut at 8,192 bytes
            with _client(gateway, key) as client:
                call(account.subscription, client, "chat", "gpt-4o", "Review this document. " + "lorem ipsum " * 3500)
        if account.tpm >= 5000:
            for status in _other_apis(gateway, key, rng):
                statuses.setdefault(account.subscription, Counter())[status] += 1
    with _client(gateway, "not-a-valid-key") as client:
        call("(bad key)", client, "chat", "gpt-4o", "hello")
    return statuses


# A long, cached system prompt: the second call with it reads Anthropic's prompt cache.
HOUSE_RULES = [{"type": "text", "text": "You answer for the finance team. " * 300,
                "cache_control": {"type": "ephemeral"}}]


def _other_apis(gateway: DevGateway, key: str, rng: random.Random) -> list[int]:
    """The other APIs the AI gateway fronts, as their own SDKs call them: Anthropic Messages (plain,
    then streamed with the cached system prompt and extended thinking) and Gemini (generateContent,
    then streamGenerateContent over SSE). Returns the HTTP statuses."""
    import httpx

    claude, gemini = gateway.config.anthropic_models[0], gateway.config.gemini_models[0]
    message = {"model": claude, "max_tokens": 200, "system": HOUSE_RULES,
               "messages": [{"role": "user", "content": rng.choice(TOPICS)}]}
    contents = {"contents": [{"role": "user", "parts": [{"text": rng.choice(TOPICS)}]}]}
    # Streamed short enough for its whole stream to fit the 8,192-byte body log (a longer one is unmetered).
    streamed = {**message, "stream": True, "max_tokens": 40, "thinking": {"type": "enabled", "budget_tokens": 24}}
    calls = [("/anthropic/v1/messages", message, {"x-api-key": key}),
             ("/anthropic/v1/messages", streamed, {"x-api-key": key}),
             (f"/v1beta/models/{gemini}:generateContent", contents, {"x-goog-api-key": key}),
             (f"/v1beta/models/{gemini}:streamGenerateContent?alt=sse", contents, {"x-goog-api-key": key})]
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        return [http.post(path, json=body, headers=headers).status_code for path, body, headers in calls]


def run(settings: Settings, gateway: DevGateway, seed: int) -> Settings:
    """Traffic, then a probe run; returns the settings pointing the probe at this gateway."""
    from shared.tooling.probe_report import run_and_print

    print(f"dev gateway (APIM stand-in) on {gateway.url}, logging into {gateway.writer.path}")
    statuses = send_demo_traffic(gateway, seed)
    for subscription, counts in statuses.items():
        text = ", ".join(f"{count}x {status}" for status, count in sorted(counts.items()))
        print(f"  demo traffic {subscription:<20} {text}")
    settings = settings.with_overrides(PROBE_ENDPOINT=gateway.url, PROBE_SUBSCRIPTION_KEY=PROBE_KEY,
                                       PROBE_SUBSCRIPTION_ID=PROBE_SUBSCRIPTION, PROBE_DEPLOYMENTS=PROBE_DEPLOYMENTS,
                                       PROBE_STREAM="both")
    run_and_print(settings)
    if not gateway.wait_idle(15.0):
        print(f"warning: {gateway.writer.pending} gateway log rows not written yet")
    print(f"gateway log rows written: {gateway.writer.rows_written}")
    print()
    return settings
