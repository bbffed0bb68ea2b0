"""``chargeback dev-gateway``: a local stand-in for APIM in front of Azure OpenAI.  Development only.

:mod:`.server` runs it (lifecycle, loopback only), :mod:`.handler` answers each request as APIM
would (routes, subscription keys, token limits, faults), :mod:`.model_stub` and
:mod:`.openai_responses` are the deterministic model behind it, :mod:`.token_limiter` the
per-key tokens-per-minute limit, :mod:`.log_rows` and :mod:`.workspace_writer` what it logs into
the local DuckDB workspace, and :mod:`.config` its keys, deployments and faults.
"""

from shared.tooling.dev_gateway.config import (
    PROBE_KEY,
    PROBE_SUBSCRIPTION,
    Faults,
    GatewayConfig,
    KeyConfig,
    write_default_config,
)
from shared.tooling.dev_gateway.log_rows import RESOURCE_ID, split_messages
from shared.tooling.dev_gateway.model_stub import chat_prompt_tokens
from shared.tooling.dev_gateway.server import DevGateway

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
