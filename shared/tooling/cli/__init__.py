"""``chargeback``: the operator's command line (rollup, backfill, reports, quotas, access, probe, local
tooling).  Development and operations only: it is not part of the deployed function app.

One dispatch style: each command module ``register``s its parsers and binds each command to its
handler with ``set_defaults(run=...)``; :func:`main` reads the settings and calls that handler.
A bad argument is exit code 2, a failed operation 1; both print one ``error:`` line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.errors import ChargebackError, InvalidRequestError
from shared.settings import Settings
from shared.tooling.cli import access, billing, local, probe, rollup, workspace

EXIT_FAILED = 1
EXIT_USAGE = 2
COMMAND_MODULES = (rollup, local, probe, billing, access, workspace)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="chargeback", description=__doc__.split("\n\n")[0])
    root.add_argument("--settings", type=Path, default=Path("local.settings.json"),
                      help="local.settings.json whose Values are read under the environment")
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
        settings = Settings.from_environment(local_settings=args.settings)
        code: int = args.run(args, settings)
        return code
    except InvalidRequestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ChargebackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
