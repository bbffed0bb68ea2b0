"""The dashboard's assets on disk: nothing from the internet, the vendored chart build shipped."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.unit.test_infra import funcignored

ROOT = Path(__file__).resolve().parents[2]


STATIC = ROOT / "shared" / "api" / "static"


URL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.IGNORECASE)


def test_nothing_is_loaded_from_the_internet() -> None:
    for name in ("dashboard.html", "dashboard.css", "dashboard.js"):
        text = (STATIC / name).read_text(encoding="utf-8")
        assert not URL.findall(text), f"{name} names an external URL: {URL.findall(text)}"
        assert "@import" not in text and "@font-face" not in text and "fonts.googleapis" not in text


def test_vendored_asset_is_installed_ignored_by_git_and_deployed() -> None:
    vendored = "shared/api/static/vendor/chart.umd.min.js"
    assert not funcignored(vendored) and not funcignored("shared/api/static/dashboard.js")
    assert "shared/api/static/vendor/" in (ROOT / ".gitignore").read_text().splitlines()
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert bootstrap.index("npm ci") < bootstrap.index("bash scripts/vendor-assets.sh")
    browser = (ROOT / "scripts" / "install-chromium.sh").read_text()  # test-only step, run by scripts/test.sh
    assert "command -v chromium" in browser and "install -y" in browser and "--no-install-recommends" in browser
    vendor_script = (ROOT / "scripts" / "vendor-assets.sh").read_text()
    assert "node_modules/chart.js/dist/chart.umd.min.js" in vendor_script and vendored in vendor_script
    azure = (ROOT / "azure.yaml").read_text()
    hook = "hooks:\n  prepackage:\n    posix:\n      shell: sh\n      run: bash scripts/vendor-assets.sh\n"
    assert hook in azure
    package = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", package["playwright-core"])  # pinned exactly
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/playwright-core"]["version"] == package["playwright-core"]
