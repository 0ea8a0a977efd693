"""The ``gateway`` command: one sub-command per module under :mod:`gateway.commands`.

Each command module defines ``HELP`` (one line), ``configure(parser)`` and ``run(args) -> int``,
and keeps heavy imports inside ``run`` so that ``gateway --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gateway import __version__

#: name -> module; the order is the order of ``gateway --help``.
COMMANDS: dict[str, str] = {
    "demo": "gateway.commands.demo",
    "serve": "gateway.commands.serve",
    "seed": "gateway.commands.seed",
    "check-policy": "gateway.commands.check_policy",
    "self-test": "gateway.commands.self_test",
    "audit": "gateway.commands.audit",
    "report": "gateway.commands.report",
    "passwd": "gateway.commands.passwd",
    "certification": "gateway.commands.certification",
    "notices": "gateway.commands.notices",
    "healthcheck": "gateway.commands.healthcheck",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description=(
            "A purpose-bound access gateway in front of PostgreSQL. Requesters state a lawful purpose; "
            "immigration-status data leaves the database only for it, and every request is written to "
            "a hash-chained request log before any result is released."
        ),
    )
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a command not built yet stays out of --help
            if exc.name == module_name:
                continue
            raise
        cmd = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        module.configure(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
