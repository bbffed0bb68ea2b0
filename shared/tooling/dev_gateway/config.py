"""What the dev gateway serves: subscription keys with their tokens-per-minute limits, deployments (and
the Anthropic and Gemini models it answers for),
what APIM's diagnostic setting would log (bodies, LLM messages, headers) and injected faults.

A config comes from code (:meth:`GatewayConfig.default`, the demo's keys), a dict, or a JSON file
(``chargeback dev-gateway --config``; ``--write-config`` writes the default one to start from).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from shared.errors import ChargebackError
from shared.tooling.demo import demo_data

# The demo's keys: three teams (the sandbox key has a small TPM limit, so the demo shows 429s) and
# the synthetic probe's own subscription (PROBE_SUBSCRIPTION_KEY / PROBE_SUBSCRIPTION_ID locally).
DEFAULT_KEYS: dict[str, dict[str, Any]] = {
    "dev-key-team-search-0001": {"subscription": "team-search", "product": "ai-premium", "tpm": 200000},
    "dev-key-team-support-bot-0002": {"subscription": "team-support-bot", "product": "ai-standard", "tpm": 50000},
    "dev-key-sandbox-0003": {"subscription": "sandbox", "product": "ai-trial", "tpm": 1500},
    "dev-key-chargeback-probe-0004": {"subscription": "chargeback-probe", "product": "monitoring", "tpm": 100000},
}
PROBE_KEY = "dev-key-chargeback-probe-0004"
PROBE_SUBSCRIPTION = "chargeback-probe"


@dataclass(frozen=True)
class KeyConfig:
    subscription: str
    product: str
    tpm: int  # tokens per minute (prompt + completion), sliding 60-second window


@dataclass(frozen=True)
class Faults:
    status: int | None = None  # answer matching requests with this status from the "backend" (500, 503, ...)
    delay_seconds: float = 0.0  # wait before answering (provokes client timeouts)
    first_token_delay_seconds: float = 0.0  # streams: wait before the first content chunk
    chunk_delay_seconds: float = 0.0  # streams: wait before every further content chunk
    deployments: tuple[str, ...] = ()  # only these deployments; empty = all

    def applies(self, deployment: str) -> bool:
        return not self.deployments or deployment in self.deployments

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        status = data.get("status")
        if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError(f"fault status must be an HTTP error status, got {status!r}")
        return cls(status=status, delay_seconds=float(data.get("delay_seconds", 0)),
                   first_token_delay_seconds=float(data.get("first_token_delay_seconds", 0)),
                   chunk_delay_seconds=float(data.get("chunk_delay_seconds", 0)),
                   deployments=tuple(data.get("deployments", ())))


@dataclass(frozen=True)
class GatewayConfig:
    keys: dict[str, KeyConfig]
    deployments: dict[str, str] = field(default_factory=lambda: {d[0]: d[1] for d in demo_data.DEPLOYMENTS})
    # Models behind the non-OpenAI APIs the AI gateway fronts (Anthropic Messages, Gemini / Vertex AI).
    anthropic_models: tuple[str, ...] = demo_data.ANTHROPIC_MODELS
    gemini_models: tuple[str, ...] = demo_data.GEMINI_MODELS
    body_bytes: int = 8192  # response bodies logged (APIM's maximum is 8192); 0 = body logging off
    llm_messages: bool = True  # log prompt/completion text in the LLM log (token counts are logged either way)
    llm_chunk_bytes: int = 32768  # messages longer than this are split over several SequenceNumber rows
    region: str = "Local Dev"
    probe_header: str = "x-chargeback-probe"  # normalised like infra/policies/probe-marker.xml
    logged_headers: tuple[str, ...] = ("x-chargeback-probe",)  # what the APIM diagnostic logs
    embedding_dimensions: int = 1536
    faults: Faults = Faults()

    @classmethod
    def default(cls) -> GatewayConfig:
        return cls.from_dict({"keys": DEFAULT_KEYS})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GatewayConfig:
        keys = {str(k): KeyConfig(str(v["subscription"]), str(v.get("product", "")), int(v["tpm"]))
                for k, v in dict(data.get("keys", {})).items()}
        if not keys:
            raise ValueError("the dev gateway config needs at least one key in 'keys'")
        base = cls(keys=keys)
        body_bytes = int(data.get("body_bytes", base.body_bytes))
        if not 0 <= body_bytes <= 8192:
            raise ValueError(f"body_bytes must be between 0 and 8192 (APIM's maximum), got {body_bytes}")
        probe_header = str(data.get("probe_header", base.probe_header)).lower()
        return replace(
            base,
            deployments=dict(data.get("deployments", base.deployments)),
            anthropic_models=tuple(data.get("anthropic_models", base.anthropic_models)),
            gemini_models=tuple(data.get("gemini_models", base.gemini_models)),
            body_bytes=body_bytes,
            llm_messages=bool(data.get("llm_messages", base.llm_messages)),
            llm_chunk_bytes=max(64, int(data.get("llm_chunk_bytes", base.llm_chunk_bytes))),
            region=str(data.get("region", base.region)),
            probe_header=probe_header,
            logged_headers=tuple(h.lower() for h in data.get("logged_headers", (probe_header,))),
            embedding_dimensions=int(data.get("embedding_dimensions", base.embedding_dimensions)),
            faults=Faults.from_dict(data.get("faults", {})),
        )

    @classmethod
    def load(cls, path: Path) -> GatewayConfig:
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ChargebackError(f"dev gateway config {path}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["logged_headers"] = list(self.logged_headers)
        data["anthropic_models"] = list(self.anthropic_models)
        data["gemini_models"] = list(self.gemini_models)
        data["faults"]["deployments"] = list(self.faults.deployments)
        return data


def write_default_config(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(GatewayConfig.default().to_dict(), indent=2) + "\n", encoding="utf-8")
