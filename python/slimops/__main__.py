"""Command line: ``slimops info | bench | profile OP`` (also ``python -m slimops ...``)."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slimops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="versions, built native modules and active backends")
    p_info.add_argument("--json", action="store_true", help="print JSON")
    args, rest = parser.parse_known_args(argv)

    if args.command == "info":
        import slimops
        from slimops._info import format_info

        d = slimops.info()
        print(json.dumps(d, indent=2) if args.json else format_info(d))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
