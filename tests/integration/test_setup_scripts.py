"""The README's two commands on a fresh machine: the local run needs no apt and no browser; only
the test command installs chromium, waiting (bounded, saying so) for another process's dpkg lock;
the Python version is checked first and a .venv built by another Python is rebuilt.

The scripts run for real in a temporary tree, with stand-in executables (python3, apt-get, fuser,
id, ...) first on PATH that record how they were called."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash") or "/bin/bash"


def executable(path: Path, body: str) -> Path:
    path.write_text("#!" + BASH + "\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def tools(bin_dir: Path, *names: str) -> None:
    """Real coreutils the scripts use, and nothing else of the machine (no chromium, no python)."""
    for name in names:
        real = shutil.which(name)
        assert real, name
        (bin_dir / name).symlink_to(real)


def run(script: Path, bin_dir: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BASH, str(script)], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={"PATH": str(bin_dir), "HOME": str(cwd), **env})


def test_local_run_needs_no_apt_and_no_browser_the_test_command_installs_it() -> None:
    for script in ("local-run.sh", "bootstrap.sh", "vendor-assets.sh"):
        text = (ROOT / "scripts" / script).read_text()
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        code = re.sub(r'"[^"]*"', '""', code)  # messages may name apt; commands may not
        assert "apt" not in code and "chromium" not in code, script
    test_sh = (ROOT / "scripts" / "test.sh").read_text()
    assert test_sh.index("bash scripts/bootstrap.sh") < test_sh.index("bash scripts/install-chromium.sh") \
        < test_sh.index(".venv/bin/python -m pytest")
    assert "exec bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()  # CI gets chromium through it
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/local-run.sh\n" in readme and "bash scripts/test.sh\n" in readme


@pytest.fixture
def fake_apt(tmp_path: Path) -> Path:
    """id (root), apt-cache (knows chromium), apt-get (logs, "installs" chromium), fuser (the lock is
    held while ``lock-held`` exists; each poll counts down its number)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tools(bin_dir, "sleep", "grep", "cat", "rm", "echo")
    executable(bin_dir / "id", "echo 0\n")
    executable(bin_dir / "apt-cache", "echo '  Candidate: 120.0-1'\n")
    executable(bin_dir / "apt-get", f"""\
        echo "$*" >> {tmp_path}/apt-get.log
        case "$*" in *install*) printf '#!{BASH}\\n' > {bin_dir}/chromium; /bin/chmod +x {bin_dir}/chromium;; esac
        """)
    executable(bin_dir / "fuser", f"""\
        held={tmp_path}/lock-held
        [ -f "$held" ] || exit 1
        left=$(cat "$held")
        if [ "$left" -le 0 ]; then rm "$held"; exit 1; fi
        echo $((left - 1)) > "$held"
        exit 0
        """)
    return bin_dir


def test_chromium_install_waits_for_the_dpkg_lock_and_says_so(fake_apt: Path, tmp_path: Path) -> None:
    (tmp_path / "lock-held").write_text("1")  # another apt run holds the lock for one poll
    done = run(ROOT / "scripts" / "install-chromium.sh", fake_apt, tmp_path, CHROMIUM_LOCK_WAIT_SECONDS="30")
    assert done.returncode == 0, done.stderr
    assert "another process holds the dpkg/apt lock; waiting up to 30s" in done.stderr
    assert "the dpkg lock is free" in done.stderr and "installing Debian's chromium" in done.stderr
    calls = (tmp_path / "apt-get.log").read_text().splitlines()
    assert len(calls) == 1 and "install -y" in calls[0] and "chromium" in calls[0]
    timeout = int(calls[0].split("DPkg::Lock::Timeout=")[1].split()[0])
    assert 0 < timeout <= 30  # what is left of the bounded wait, handed to apt itself
    assert (fake_apt / "chromium").exists()
    again = run(ROOT / "scripts" / "install-chromium.sh", fake_apt, tmp_path)
    assert again.returncode == 0 and again.stderr == ""  # installed: nothing to do
    assert len((tmp_path / "apt-get.log").read_text().splitlines()) == 1


def test_chromium_install_gives_up_after_the_bounded_wait(fake_apt: Path, tmp_path: Path) -> None:
    (tmp_path / "lock-held").write_text("1000")
    done = run(ROOT / "scripts" / "install-chromium.sh", fake_apt, tmp_path, CHROMIUM_LOCK_WAIT_SECONDS="1")
    assert done.returncode == 1
    assert "the dpkg lock is still held after 1s; giving up" in done.stderr
    assert not (tmp_path / "apt-get.log").exists()


def test_without_root_the_browser_test_is_skipped_not_the_run(fake_apt: Path, tmp_path: Path) -> None:
    executable(fake_apt / "id", "echo 1000\n")
    done = run(ROOT / "scripts" / "install-chromium.sh", fake_apt, tmp_path)
    assert done.returncode == 0 and "browser test will be skipped" in done.stderr
    assert not (tmp_path / "apt-get.log").exists()


def fake_python(path: Path, version: str, log: Path) -> Path:
    """A python that reports ``version`` and, for ``-m venv DIR``, makes a venv of itself."""
    return executable(path, f"""\
        echo "$0 $*" >> {log}
        case "$1" in
          -c) echo {version};;
          -m) if [ "$2" = venv ]; then
                mkdir -p "$3/bin"; cp "$0" "$3/bin/python"
                printf 'home = /x\\nversion = {version}.4\\n' > "$3/pyvenv.cfg"
              fi;;
        esac
        """)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the scripts with stand-in project files, npm already installed and vendored."""
    root = tmp_path / "project"
    shutil.copytree(ROOT / "scripts", root / "scripts")
    for name in ("pyproject.toml", "requirements.txt", "package-lock.json"):
        (root / name).write_text(name)
    lock_hash = hashlib.sha256(b"package-lock.json").hexdigest()[:16]
    (root / "node_modules").mkdir()
    (root / "node_modules" / f".installed-{lock_hash}").touch()
    for line in (root / "scripts" / "vendor-assets.sh").read_text().splitlines():
        if line.strip().startswith('"node_modules/'):
            source = root / line.strip().strip('"').split()[0]
            source.parent.mkdir(parents=True, exist_ok=True)
            source.write_text("asset")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tools(bin_dir, "sed", "head", "cat", "sha256sum", "cut", "rm", "mkdir", "cp", "touch", "cmp", "dirname",
          "printf", "chmod", "bash")
    executable(bin_dir / "node", "exit 0\n")
    return root


def test_wrong_python_is_refused_first_naming_the_needed_version(project: Path, tmp_path: Path) -> None:
    log = tmp_path / "python.log"
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir / "python3", "3.12", log)
    done = run(project / "scripts" / "bootstrap.sh", bin_dir, project)
    assert done.returncode == 1
    assert "Python 3.11 is needed (found: python3=3.12)" in done.stderr and "python3.11" in done.stderr
    assert not (project / ".venv").exists()

    fake_python(bin_dir / "python3.11", "3.11", log)  # python3 is 3.12, python3.11 is there too
    done = run(project / "scripts" / "bootstrap.sh", bin_dir, project)
    assert done.returncode == 0, done.stderr
    assert f"creating .venv with {bin_dir / 'python3.11'}" in done.stderr
    assert "version = 3.11.4" in (project / ".venv" / "pyvenv.cfg").read_text()


def test_venv_made_by_another_python_is_rebuilt(project: Path, tmp_path: Path) -> None:
    log = tmp_path / "python.log"
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir / "python3", "3.11", log)
    old = project / ".venv"
    (old / "bin").mkdir(parents=True)
    fake_python(old / "bin" / "python", "3.12", log)
    (old / "pyvenv.cfg").write_text("home = /usr/bin\nversion_info = 3.12.3.final.0\n")
    (old / "leftover").touch()
    done = run(project / "scripts" / "bootstrap.sh", bin_dir, project)
    assert done.returncode == 0, done.stderr
    assert ".venv was made by Python 3.12" in done.stderr and "rebuilding it" in done.stderr
    assert not (old / "leftover").exists() and "version = 3.11.4" in (old / "pyvenv.cfg").read_text()
    assert any("-m pip install --quiet -e .[local,dev]" in line for line in log.read_text().splitlines())

    log.write_text("")
    rerun = run(project / "scripts" / "bootstrap.sh", bin_dir, project)
    assert rerun.returncode == 0 and "rebuilding" not in rerun.stderr  # the right venv stays
    assert "pip install" not in log.read_text()


def test_explicit_python_of_another_version_is_refused(project: Path, tmp_path: Path) -> None:
    other = fake_python(tmp_path / "bin" / "py312", "3.12", tmp_path / "python.log")
    done = run(project / "scripts" / "bootstrap.sh", tmp_path / "bin", project, PYTHON=str(other))
    assert done.returncode == 1 and f"PYTHON={other} is Python 3.12; Python 3.11 is needed" in done.stderr
    assert os.listdir(project).count(".venv") == 0
