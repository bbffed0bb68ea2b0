"""``chargeback probe`` and ``chargeback dev-gateway``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.errors import SettingError
from shared.settings import Settings

if TYPE_CHECKING:
    pass

EXIT_FAILED = 1


def register(sub: Any) -> None:
    probe = sub.add_parser("probe", help="one synthetic probe run through APIM (PROBE_* settings); exit 1 on failure")
    probe.set_defaults(run=run_probe)
    probe.add_argument("--deployment", action="append",
                       help="probe this deployment (repeat); default PROBE_DEPLOYMENTS")
    probe.add_argument("--stream", choices=("false", "true", "both"), help="override PROBE_STREAM")
    probe.add_argument("--endpoint", help="override PROBE_ENDPOINT (e.g. a running `chargeback dev-gateway`)")

    gateway = sub.add_parser("dev-gateway", help="local APIM stand-in on loopback writing the local workspace "
                                                 "(development only)")
    gateway.set_defaults(run=dev_gateway)
    gateway.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    gateway.add_argument("--port", type=int, default=8081, help="port to listen on (default 8081, the sample's "
                                                                  "PROBE_ENDPOINT)")
    gateway.add_argument("--config", type=Path, help="JSON key list and options (default: the built-in demo config)")
    gateway.add_argument("--workspace", type=Path, help="DuckDB workspace to log into (default LOCAL_WORKSPACE_PATH)")
    gateway.add_argument("--write-config", type=Path, metavar="FILE",
                         help="write the default config to FILE (to edit) and exit")


def run_probe(args: argparse.Namespace, settings: Settings) -> int:
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
    from shared.tooling.probe_report import run_and_print

    return 0 if run_and_print(settings).ok else EXIT_FAILED


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
