"""Which ``local.settings.json`` the command line reads.

``--settings FILE`` when given (it must exist).  Otherwise the project's own file, wherever the
command runs: the project root is the nearest folder, from the current one up, holding
``pyproject.toml`` or ``function_app.py``; outside any project, the checkout this command was
installed from.  One line on stderr says which file was read, or that none was found (then only the
process environment counts, as in Azure).
"""

from __future__ import annotations

import sys
from pathlib import Path

from shared.errors import InvalidRequestError

FILE_NAME = "local.settings.json"
ROOT_MARKERS = ("pyproject.toml", "function_app.py")
CHECKOUT = Path(__file__).resolve().parents[3]  # shared/tooling/cli/ -> the project root


def project_root(start: Path) -> Path | None:
    """The nearest folder from ``start`` up that holds ``pyproject.toml`` or ``function_app.py``."""
    for folder in (start, *start.parents):
        if any((folder / marker).is_file() for marker in ROOT_MARKERS):
            return folder
    return None


def find_settings_file(given: Path | None, cwd: Path, checkout: Path = CHECKOUT) -> Path:
    """The settings file to read (a path that does not exist when there is none); reports it on stderr."""
    if given is not None:
        if not given.is_file():
            raise InvalidRequestError("--settings", f"no such file: {given}")
        print(f"settings: {given.resolve()}", file=sys.stderr)
        return given
    roots = [root for root in (project_root(cwd.resolve()), checkout) if root is not None]
    for root in dict.fromkeys(roots):
        if (root / FILE_NAME).is_file():
            print(f"settings: {root / FILE_NAME}", file=sys.stderr)
            return root / FILE_NAME
    looked = " or ".join(str(root / FILE_NAME) for root in dict.fromkeys(roots))
    print(f"settings: no {FILE_NAME} found (looked for {looked}); using the process environment only",
          file=sys.stderr)
    return (roots[0] if roots else cwd) / FILE_NAME
