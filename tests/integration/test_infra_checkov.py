"""checkov (PyPI) over infra/ offline: the sign-in config (app/api-auth.bicep) has no finding left
unexplained, and nothing outside the known findings below appears.  checkov is not a project
dependency (it pins its own versions of half the ecosystem): the test runs when ``CHECKOV`` names
the executable or ``checkov`` is on PATH (``python -m venv /tmp/ck && /tmp/ck/bin/pip install
checkov``), and is skipped otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Findings the templates had before App Service Authentication was added (file under infra/, check),
# not judged here: most are site checks checkov applies to every Microsoft.Web/sites/config, or
# choices of the template (public endpoints, no VNet, Flex Consumption without zone redundancy).
KNOWN = {
    ("app/api-settings.bicep", "CKV_AZURE_13"), ("app/api-settings.bicep", "CKV_AZURE_222"),
    ("app/api-settings.bicep", "CKV_AZURE_63"), ("app/api-settings.bicep", "CKV_AZURE_65"),
    ("app/api-settings.bicep", "CKV_AZURE_66"), ("app/api-settings.bicep", "CKV_AZURE_80"),
    ("app/api-settings.bicep", "CKV_AZURE_88"), ("app/api.bicep", "CKV_AZURE_17"),
    ("app/api.bicep", "CKV_AZURE_212"), ("app/api.bicep", "CKV_AZURE_213"), ("app/api.bicep", "CKV_AZURE_222"),
    ("app/api.bicep", "CKV_AZURE_225"), ("core/ai/openai.bicep", "CKV_AZURE_134"),
    ("core/gateway/apim.bicep", "CKV_AZURE_107"), ("core/gateway/apim.bicep", "CKV_AZURE_174"),
    ("core/security/keyvault.bicep", "CKV_AZURE_109"), ("core/security/keyvault.bicep", "CKV_AZURE_110"),
    ("core/security/keyvault.bicep", "CKV_AZURE_114"), ("core/security/keyvault.bicep", "CKV_AZURE_189"),
    ("core/security/keyvault.bicep", "CKV_AZURE_41"), ("core/security/keyvault.bicep", "CKV_AZURE_42"),
    ("core/storage/storage-account.bicep", "CKV_AZURE_206"), ("core/storage/storage-account.bicep", "CKV_AZURE_35"),
    ("core/storage/storage-account.bicep", "CKV_AZURE_59"),
}


def _checkov() -> str:
    found = os.environ.get("CHECKOV") or shutil.which("checkov")
    if not found:
        pytest.skip("checkov is not installed (set CHECKOV=/path/to/checkov to run this check)")
    return found


def _results() -> dict[str, Any]:
    done = subprocess.run([_checkov(), "-d", "infra", "--framework", "bicep", "--output", "json",
                           "--skip-download"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1 = findings; anything else = checkov failed
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["check_type"] == "bicep" and report["summary"]["parsing_errors"] == 0, report["summary"]
    return dict(report["results"])


def test_checkov_finds_nothing_new() -> None:
    results = _results()
    failed = {(f["file_path"].lstrip("/"), f["check_id"]) for f in results["failed_checks"]}
    assert not failed - KNOWN, f"new checkov findings: {sorted(failed - KNOWN)}"
    assert not {pair for pair in failed if pair[0] == "app/api-auth.bicep"}
    skipped = [s for s in results["skipped_checks"] if s["file_path"].lstrip("/") == "app/api-auth.bicep"]
    # each skip says why (the site checks checkov applies to a config resource; CKV_AZURE_13 reads V1 only)
    assert {s["check_id"] for s in skipped} == {"CKV_AZURE_13", "CKV_AZURE_63", "CKV_AZURE_65", "CKV_AZURE_66",
                                                "CKV_AZURE_80", "CKV_AZURE_88", "CKV_AZURE_222"}
    assert all(len(s["check_result"].get("suppress_comment", "")) > 20 for s in skipped), skipped
