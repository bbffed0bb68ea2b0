"""``chargeback index rebuild [--from --to]``: the period index of day and month rows written again
from the usage table (after an upgrade that introduced it, or to repair it; see
:mod:`shared.adapters.usage_index`)."""

from __future__ import annotations

import argparse
from typing import Any

from shared.errors import InvalidRequestError
from shared.settings import Settings
from shared.tooling.cli.rollup import moment


def register(sub: Any) -> None:
    index = sub.add_parser("index", help="the period index of day and month usage rows")
    actions = index.add_subparsers(dest="action", required=True)
    rebuild = actions.add_parser("rebuild", help="write the index again from the usage table (all, or --from/--to)")
    rebuild.add_argument("--from", dest="start", type=moment, help="first period (ISO), inclusive")
    rebuild.add_argument("--to", dest="end", type=moment, help="end (ISO), exclusive")
    rebuild.set_defaults(run=run_rebuild)


def run_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from shared.adapters.usage_index_rebuild import rebuild
    from shared.composition import table_store

    if (args.start is None) != (args.end is None):
        raise InvalidRequestError("--from/--to", "give both for a range, or neither for every period")
    if args.start is not None and args.start >= args.end:
        raise InvalidRequestError("--from", "must be before --to")
    print(rebuild(table_store(settings), args.start, args.end).summary())
    return 0
