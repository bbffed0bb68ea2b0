"""The deploy package as Azure gets it: the files ``.funcignore`` selects from this checkout, with
only ``requirements.txt`` installed (a fresh venv, as the remote build does), indexed like the
Functions host does and answering ``/api/health`` against a real Azurite.

The venv is kept under ``.local/`` per hash of ``requirements.txt`` and the interpreter version,
so only the first run (or a changed requirement) pays for the install.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pathspec
import pytest

from tests.conftest import TEST_API_KEY, make_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
VENV_CACHE = ROOT / ".local" / "deploy-venvs"
PIP_INSTALL_TIMEOUT_SECONDS = 540
NOT_DEPLOYED = ("tests", "bench", "scripts", "tools", "infra", "node_modules", ".venv", ".local", ".git")
DEV_ONLY_PACKAGES = ("duckdb", "duckdb_kql", "fastavro", "pyarrow", "uvicorn", "pytest", "hypothesis", "mypy")

# Runs inside the deploy package with the fresh venv's interpreter: index the app once, call the
# HTTP function for GET /api/health, then import every shipped module.  Prints one JSON document.
PROBE_SCRIPT = r"""
import asyncio, importlib, importlib.util, json, sys, traceback

import azure.functions as func

import function_app

modules, dev_only = json.loads(sys.argv[1]), json.loads(sys.argv[2])
functions = {f.get_function_name(): f for f in function_app.app.get_functions()}  # indexing twice fails
triggers = {name: f.get_bindings_dict()["bindings"][0]["type"] for name, f in functions.items()}


class Context:
    invocation_id = "deploy-package-test"
    function_name = "http_app_func"
    function_directory = "."
    trace_context = None
    retry_context = None


http = functions["http_app_func"].get_user_function()
response = asyncio.run(http(func.HttpRequest("GET", "http://localhost/api/health", body=b"", headers={}), Context()))
failed = {}
for name in modules:
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=3)
print(json.dumps({
    "triggers": triggers,
    "health": {"status": response.status_code, "body": json.loads(response.get_body())},
    "import_failures": failed,
    "dev_packages_present": [p for p in dev_only if importlib.util.find_spec(p) is not None],
    "shared_from": importlib.import_module("shared").__file__,
}))
"""


def funcignore() -> pathspec.GitIgnoreSpec:
    lines = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


def deploy_files() -> list[str]:
    """Paths (relative, POSIX) of the files the Functions tooling zips from this checkout: a directory
    the ignore file matches is not entered, as in git, so nothing under it can be re-included."""
    spec = funcignore()
    selected: list[str] = []
    for folder, dirs, files in os.walk(ROOT):
        base = PurePosixPath(Path(folder).relative_to(ROOT).as_posix())  # "." at the top: "." / name == name
        dirs[:] = sorted(d for d in dirs if not spec.match_file(f"{base / d}/"))
        selected += [str(base / f) for f in sorted(files) if not spec.match_file(str(base / f))]
    return sorted(selected)


def module_names(files: list[str]) -> list[str]:
    names = []
    for path in files:
        if path.startswith("shared/") and path.endswith(".py"):
            parts = path.removesuffix(".py").split("/")
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)


def deploy_python() -> Path:
    """The interpreter Azure runs the app with (3.11), in a venv holding ``requirements.txt`` alone."""
    base = shutil.which("python3.11") or (sys.executable if sys.version_info[:2] == (3, 11) else None)
    if base is None:
        pytest.skip("python3.11 is needed to build the deploy package's venv")
    digest = hashlib.sha256((ROOT / "requirements.txt").read_bytes() + sys.version.encode()).hexdigest()[:16]
    venv = VENV_CACHE / digest
    python = venv / "bin" / "python"
    if (venv / ".complete").is_file():
        return python
    shutil.rmtree(venv, ignore_errors=True)  # an install that did not finish
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=120)
    # pip's own configuration (index, certificates) comes from the environment: keep it.
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-r", str(ROOT / "requirements.txt")], check=True, timeout=PIP_INSTALL_TIMEOUT_SECONDS)
    (venv / ".complete").touch()
    return python


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    files = deploy_files()
    target = tmp_path_factory.mktemp("deploy-package")
    for rel in files:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target / rel)
    return target, files


def test_package_holds_the_app_and_no_tooling(package: tuple[Path, list[str]]) -> None:
    _, files = package
    assert {"function_app.py", "host.json", "requirements.txt", "shared/__init__.py",
            "shared/triggers/http_api.py"} <= set(files)
    assert any(f.startswith("queries/") and f.endswith(".kql") for f in files)
    assert any(f.startswith("queries/schemas/") for f in files)
    assert [f for f in files if f.startswith("shared/tooling/")] == []
    assert [f for f in files if f.split("/")[0] in NOT_DEPLOYED] == []
    assert [f for f in files if "__pycache__" in f or f.endswith(".pyc") or f.endswith(".md")] == []


def test_package_serves_health_from_a_fresh_venv(package: tuple[Path, list[str]], azurite) -> None:  # type: ignore[no-untyped-def]
    target, files = package
    python = deploy_python()
    settings = make_settings(target / "unused.duckdb", azurite.connection_string)
    # As in Azure: Log Analytics is the source (never queried here), settings in the process environment.
    environment = {**settings._values, "LOG_SOURCE": "loganalytics",
                   "LOG_ANALYTICS_WORKSPACE_ID": "00000000-0000-0000-0000-000000000000", "API_KEY": TEST_API_KEY,
                   "PATH": os.environ.get("PATH", ""), "HOME": str(target), "LANG": "C.UTF-8",
                   # the sync timers are registered only when scheduled: schedule them to index every function
                   "DEPLOYMENT_SYNC_SCHEDULE": "0 10 3 * * *", "PRICE_SYNC_SCHEDULE": "0 40 3 * * *"}
    environment.pop("LOCAL_WORKSPACE_PATH")
    # -s: no user site-packages, -E: no PYTHONPATH; only the package (cwd) and the venv are importable.
    result = subprocess.run(
        [str(python), "-s", "-E", "-c", PROBE_SCRIPT, json.dumps(module_names(files)), json.dumps(DEV_ONLY_PACKAGES)],
        cwd=target, env=environment, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["shared_from"]).resolve().is_relative_to(target.resolve())
    assert report["triggers"] == {"http_app_func": "httpTrigger", "rollup": "timerTrigger", "probe": "timerTrigger",
                                  "deployment_sync": "timerTrigger", "price_sync": "timerTrigger"}
    assert report["health"]["status"] == 200
    assert report["health"]["body"]["status"] == "ok" and report["health"]["body"]["storage"] == "ok"
    assert report["dev_packages_present"] == []
    assert report["import_failures"] == {}
