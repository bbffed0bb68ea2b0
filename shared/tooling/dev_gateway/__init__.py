"""``chargeback dev-gateway``: a local stand-in for APIM in front of Azure OpenAI.  Development only."""

from shared.tooling.dev_gateway.server import (
    PROBE_KEY,
    PROBE_SUBSCRIPTION,
    RESOURCE_ID,
    DevGateway,
    Faults,
    GatewayConfig,
    KeyConfig,
    chat_prompt_tokens,
    split_messages,
    write_default_config,
)

__all__ = [
    "PROBE_KEY",
    "PROBE_SUBSCRIPTION",
    "RESOURCE_ID",
    "DevGateway",
    "Faults",
    "GatewayConfig",
    "KeyConfig",
    "chat_prompt_tokens",
    "split_messages",
    "write_default_config",
]
