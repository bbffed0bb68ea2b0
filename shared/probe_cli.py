"""``chargeback probe`` and ``chargeback dev-gateway`` (sub-commands registered by ``shared.cli``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.core.probe import ProbeAttempt
from shared.errors import SettingError
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.services.probe import ProbeRunResult

EXIT_FAILED = 1


def add_parsers(sub: Any) -> None:
    probe = sub.add_parser("probe", help="one synthetic probe run through APIM (PROBE_* settings); exit 1 on failure")
    probe.add_argument("--deployment", action="append",
                       help="probe this deployment (repeat); default PROBE_DEPLOYMENTS")
    probe.add_argument("--stream", choices=("false", "true", "both"), help="override PROBE_STREAM")
    probe.add_argument("--endpoint", help="override PROBE_ENDPOINT (e.g. a running `chargeback dev-gateway`)")

    gateway = sub.add_parser("dev-gateway", help="local APIM stand-in on loopback writing the local workspace "
                                                 "(development only)")
    gateway.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    gateway.add_argument("--port", type=int, default=8081)
    gateway.add_argument("--config", type=Path, help="JSON key list and options (default: the built-in demo config)")
    gateway.add_argument("--workspace", type=Path, help="DuckDB workspace to log into (default LOCAL_WORKSPACE_PATH)")
    gateway.add_argument("--write-config", type=Path, metavar="FILE",
                         help="write the default config to FILE (to edit) and exit")


def dispatch(args: argparse.Namespace, settings: Settings) -> int | None:
    """The exit code of a command of this module, or None when the command is not one of them."""
    if args.command == "probe":
        return probe(args, settings)
    if args.command == "dev-gateway":
        return dev_gateway(args, settings)
    return None


def probe(args: argparse.Namespace, settings: Settings) -> int:
    overrides = {}
    if args.deployment:
        overrides["PROBE_DEPLOYMENTS"] = ",".join(args.deployment)
    if args.stream:
        overrides["PROBE_STREAM"] = args.stream
    if args.endpoint:
        overrides["PROBE_ENDPOINT"] = args.endpoint
    settings = settings.with_overrides(**overrides)
    if not settings.probe_deployments:
        raise SettingError("PROBE_DEPLOYMENTS", "is empty: nothing to probe (or pass --deployment)")
    return 0 if run_and_print(settings).ok else EXIT_FAILED


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


def dev_gateway(args: argparse.Namespace, settings: Settings) -> int:
    from shared.tooling.dev_gateway import DevGateway, GatewayConfig, write_default_config

    if args.write_config:
        write_default_config(args.write_config)
        print(f"wrote {args.write_config}")
        return 0
    config = GatewayConfig.load(args.config) if args.config else GatewayConfig.default()
    workspace = args.workspace or settings.local_workspace_path
    gateway = DevGateway(config, workspace, host=args.host, port=args.port)
    print(f"dev gateway on {gateway.url}  (Azure OpenAI style: /openai/deployments/<name>/chat/completions"
          "?api-version=...)")
    print(f"logging into {workspace} (body bytes {config.body_bytes}); deployments: {', '.join(config.deployments)}")
    for key, account in config.keys.items():
        print(f"  key {key}: subscription {account.subscription}, product {account.product}, {account.tpm} TPM")
    print("Ctrl-C stops it.")
    try:
        gateway.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        gateway.stop()
    return 0
