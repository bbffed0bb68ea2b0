"""The operator's first hour with ``chargeback``: a pipe cut short, the probe with the sample settings
against the dev gateway, a port already taken, and a workspace that survives the next run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from shared.settings import Settings
from shared.tooling.cli import main
from shared.tooling.demo.local_ports import plan_ports
from shared.tooling.demo.workspace_state import read_contents
from shared.tooling.dev_gateway import DevGateway, GatewayConfig

ROOT = Path(__file__).resolve().parents[2]
CHARGEBACK = Path(sys.executable).parent / "chargeback"  # the installed command, as an operator runs it


def sample_values() -> dict[str, str]:
    values: dict[str, str] = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    return values


def settings_file(tmp_path: Path, values: dict[str, str]) -> Path:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": values}))
    return path


def test_output_cut_short_by_the_reader_is_quiet(settings: Settings, tmp_path: Path) -> None:
    path = settings_file(tmp_path, settings._values)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line, as `| head -0` would be
    try:
        done = subprocess.run([str(CHARGEBACK), "--settings", str(path), "prices", "list"],
                              cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 141


def test_probe_works_with_the_sample_settings(settings: Settings, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    values = sample_values()
    deployments = values["PROBE_DEPLOYMENTS"].split(",")
    config = GatewayConfig.default()
    assert deployments and all(d in config.deployments for d in deployments)  # the dev gateway serves them
    assert values["PROBE_SUBSCRIPTION_KEY"] in config.keys
    assert config.keys[values["PROBE_SUBSCRIPTION_KEY"]].subscription == values["PROBE_SUBSCRIPTION_ID"]
    assert values["PROBE_ENDPOINT"] == "http://127.0.0.1:8081"  # `chargeback dev-gateway`'s default port
    with DevGateway(config, tmp_path / "gateway.duckdb") as gateway:
        # Only where it listens and where results are stored differ from the sample here.
        path = settings_file(tmp_path, {**values, "TABLES_CONNECTION_STRING": settings.value("TABLES_CONNECTION_STRING")
                                        or "", "TABLE_PREFIX": settings.table_prefix})
        assert main(["--settings", str(path), "probe", "--endpoint", gateway.url]) == 0
    out = capsys.readouterr().out
    assert f"{len(deployments)} calls, 0 failed" in out
    assert all(d in out for d in deployments)


def test_a_taken_port_fails_before_anything_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = tmp_path / "data" / "workspace.duckdb"
    path = settings_file(tmp_path, {"LOCAL_WORKSPACE_PATH": str(workspace)})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--settings", str(path), "local-run", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"port {port} (the report API)" in err and "--port 0" in err
    assert not (tmp_path / "data").exists()  # no Azurite data, no workspace: nothing started


def test_port_zero_takes_free_ports_for_everything() -> None:
    ports = plan_ports(0)
    assert len({ports.api, ports.azurite, ports.gateway}) == 3
    for port in (ports.api, ports.azurite, ports.gateway):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # free: a listener could take it


def test_demo_data_keeps_the_replaced_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = tmp_path / "ws.duckdb"
    path = settings_file(tmp_path, {"LOCAL_WORKSPACE_PATH": str(workspace)})
    assert main(["--settings", str(path), "demo-data", "--days", "1", "--seed", "1"]) == 0
    first = read_contents(workspace)
    assert first is not None and first.gateway_rows > 0
    capsys.readouterr()
    assert main(["--settings", str(path), "demo-data", "--days", "2", "--seed", "1"]) == 0
    err = capsys.readouterr().err
    assert "warning: replacing" in err and "ws.previous.duckdb" in err
    assert read_contents(tmp_path / "ws.previous.duckdb") == first
    second = read_contents(workspace)
    assert second is not None and second.gateway_rows > first.gateway_rows


def test_rerun_keeps_imported_logs_and_fresh_sets_them_aside(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A local run over a workspace holding imported logs keeps and rolls them up; --fresh warns,
    keeps the old file as .previous and writes demo data."""
    from tests.integration.test_import_example import documented_example

    workspace = tmp_path / "data" / "workspace.duckdb"
    source = tmp_path / "imported.json"
    source.write_text(documented_example())
    path = settings_file(tmp_path, {**sample_values(), "LOCAL_WORKSPACE_PATH": str(workspace)})
    assert main(["--settings", str(path), "workspace", "import", str(source)]) == 0
    imported = read_contents(workspace)
    assert imported is not None and imported.gateway_rows == 1
    capsys.readouterr()

    assert main(["--settings", str(path), "local-run", "--port", "0", "--no-serve"]) == 0
    out = capsys.readouterr().out
    assert "keeping the workspace" in out and "demo workspace" not in out
    live = next(line for line in out.splitlines() if line.strip().startswith("demo traffic team-search"))
    live_requests = sum(int(part.split("x")[0]) for part in live.split("team-search", 1)[1].split(","))
    summary = out.split("subscription", 1)[1]
    team = next(line.split() for line in summary.splitlines() if line.startswith("team-search"))
    assert int(team[1]) == live_requests + 1, out  # the live calls and the imported request, rolled up
    kept = read_contents(workspace)
    assert kept is not None and kept.gateway_rows > 1 and kept.first == imported.first  # + the live traffic

    assert main(["--settings", str(path), "local-run", "--port", "0", "--no-serve", "--fresh"]) == 0
    out = capsys.readouterr().out
    assert "warning: --fresh replaces the workspace" in out and "demo workspace" in out
    assert read_contents(tmp_path / "data" / "workspace.previous.duckdb") == kept
