"""``chargeback``: the operator's command line (rollup, backfill, reports, quotas, access, probe, local
tooling).  Development and operations only: it is not part of the deployed function app.

One dispatch style: each command module ``register``s its parsers and binds each command to its
handler with ``set_defaults(run=...)``; :func:`main` reads the settings and calls that handler.
A bad argument is exit code 2, a failed operation 1; both print one ``error:`` line.  Output cut
short by its reader (``chargeback prices list | head``) ends quietly with 141, as SIGPIPE would.

Settings come from ``--settings FILE``, else from the project's ``local.settings.json`` wherever the
command runs (:mod:`.settings_file`); one line on stderr says which file was read, or that none was.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.errors import ChargebackError, InvalidRequestError
from shared.settings import Settings
from shared.tooling.cli import (
    access,
    billing,
    deployments,
    local,
    probe,
    reconcile,
    rollup,
    subscriptions,
    usage_index,
    workspace,
)
from shared.tooling.cli.settings_file import find_settings_file

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a command killed by SIGPIPE
COMMAND_MODULES = (rollup, local, probe, billing, deployments, subscriptions, reconcile, access, workspace,
                   usage_index)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="chargeback", description=__doc__.split("\n\n")[0])
    root.add_argument("--settings", type=Path, metavar="FILE",
                      help="local.settings.json whose Values are read under the environment (default: the one "
                           "in the project root, found from the current folder up, else beside this checkout)")
    sub = root.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # the openai client logs every request at INFO
    args = parser().parse_args(argv)
    try:
        settings_path = find_settings_file(args.settings, Path.cwd())
        settings = Settings.from_environment(local_settings=settings_path)
        code: int = args.run(args, settings)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at interpreter exit
        return code
    except InvalidRequestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ChargebackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader stopped reading (`| head`): not an error.  Point stdout at /dev/null so the
        # interpreter's own final flush does not fail again and print a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
