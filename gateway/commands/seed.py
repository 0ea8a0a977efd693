"""``gateway seed``: create and fill the reference ``dmv`` schema in a database."""

from __future__ import annotations

import argparse
import logging
import sys
import time

HELP = "create and fill the reference dmv schema with deterministic synthetic data"
DESCRIPTION = (
    "Create schema dmv (SPEC section 2) in the database at --dsn and fill it with synthetic, "
    "deterministic data: the same --persons and --seed always give the same rows. --classified-seed "
    "and --variant change only the immigration-status columns (for noninterference tests)."
)

def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", required=True, help="postgresql://USER:PASSWORD@HOST:PORT/DB")
    parser.add_argument("--persons", type=int, default=10_000, help="number of persons (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every non-classified value (default 1)")
    parser.add_argument("--classified-seed", type=int, default=None,
                        help="seed of the classified values (default: --seed)")
    parser.add_argument("--variant", choices=("default", "alt"), default="default",
                        help="distribution of the classified values (default: default)")
    parser.add_argument("--replace", action="store_true", help="drop an existing dmv schema first")


class _Bar:
    """A one-line progress bar on a TTY."""

    def __init__(self, stream: object) -> None:
        self.stream = stream

    def __call__(self, table: str, done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        line = f"\r  {table:<20} [{'#' * filled}{'.' * (width - filled)}] {done:>9,}/{total:,}"
        self.stream.write(line + ("\n" if done >= total else ""))  # type: ignore[attr-defined]
        self.stream.flush()  # type: ignore[attr-defined]


def _friendly(exc: BaseException) -> str | None:
    """A one-line message for the failures an operator can fix, or None for a real bug."""
    import asyncpg

    from gateway.seed import SeedError

    if isinstance(exc, SeedError):
        return str(exc)
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return f"cannot log in: {exc}"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"database not found: {exc}"
    if isinstance(exc, asyncpg.PostgresError):
        return f"PostgreSQL refused: {exc}"
    if isinstance(exc, OSError | TimeoutError):
        return f"cannot reach the server: {exc}"
    if isinstance(exc, ValueError):
        return f"bad --dsn: {exc}"
    return None


def run(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.seed import seed

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.persons < 1:
        print("gateway seed: --persons must be at least 1", file=sys.stderr)
        return 2
    progress = None  # not a TTY: the seeder's own log lines tell the progress
    if sys.stderr.isatty():
        progress = _Bar(sys.stderr)
        logging.getLogger("gateway.seed").setLevel(logging.WARNING)
    began = time.monotonic()
    try:
        stats = asyncio.run(seed(
            args.dsn, args.persons, args.seed, classified_seed=args.classified_seed,
            variant=args.variant, replace=args.replace, progress=progress,
        ))
    except Exception as exc:  # noqa: BLE001 - turned into a message, never a traceback
        message = _friendly(exc)
        if message is None:
            raise
        print(f"gateway seed: {message}", file=sys.stderr)
        return 1
    print(f"seeded schema dmv with {stats.persons:,} persons in {time.monotonic() - began:.1f}s")
    for table, count in stats.rows.items():
        print(f"  {table:<20} {count:>10,} rows")
    return 0
