"""The ``chargeback`` command line as a person meets it: help on every option, usage errors with exit
code 2, and which ``local.settings.json`` is read wherever the command runs."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.tooling.cli import main, parser
from shared.tooling.cli.settings_file import find_settings_file, project_root


def parsers(root: argparse.ArgumentParser, name: str = "chargeback") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, root
    for action in root._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from parsers(sub, f"{name} {sub_name}")


def test_every_command_and_option_has_help() -> None:
    missing = []
    seen = 0
    for name, command in parsers(parser()):
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                missing += [f"{name} {sub}" for sub in action.choices if sub not in helped]
            elif not isinstance(action, argparse._HelpAction):
                seen += 1
                if not action.help:
                    missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert seen > 40  # the walk reached every command's options
    assert not missing, f"without help text: {missing}"


@pytest.mark.parametrize("days", ["-3", "0", "two"])
def test_demo_data_needs_at_least_one_day(tmp_path: Path, days: str, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = tmp_path / "ws.duckdb"
    with pytest.raises(SystemExit) as exit_:
        main(["demo-data", "--days", days, "--path", str(workspace)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --days:" in err and days in err
    assert not workspace.exists()  # nothing written


def project(tmp_path: Path, values: dict[str, str] | None) -> Path:
    root = tmp_path / "checkout"
    (root / "shared" / "tooling").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    if values is not None:
        (root / "local.settings.json").write_text(json.dumps({"Values": values}))
    return root


def test_settings_found_from_anywhere_inside_the_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = project(tmp_path, {})
    deep = root / "shared" / "tooling"
    assert project_root(deep) == root
    assert find_settings_file(None, deep, checkout=tmp_path / "elsewhere") == root / "local.settings.json"
    assert capsys.readouterr().err == f"settings: {root / 'local.settings.json'}\n"


def test_outside_any_project_the_checkouts_settings_are_read(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    checkout = project(tmp_path, {})
    outside = tmp_path / "somewhere"
    outside.mkdir()
    assert find_settings_file(None, outside, checkout=checkout) == checkout / "local.settings.json"
    assert capsys.readouterr().err.strip() == f"settings: {checkout / 'local.settings.json'}"


def test_no_settings_file_is_said_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkout = project(tmp_path, None)
    found = find_settings_file(None, checkout, checkout=checkout)
    assert not found.exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no local.settings.json found" in err and str(checkout) in err


def test_a_given_settings_file_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--settings", str(tmp_path / "nope.json"), "queries", "check"]) == 2
    assert "--settings" in capsys.readouterr().err
