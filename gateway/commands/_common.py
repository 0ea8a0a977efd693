"""Helpers shared by commands that talk to a live database with the policy."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from gateway.errors import ConfigError


def add_policy_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", default=os.environ.get("GATEWAY_BACKEND_DSN"),
                        help="backend database (default: $GATEWAY_BACKEND_DSN)")
    parser.add_argument("--policy", default=os.environ.get("GATEWAY_POLICY", "policies/colorado-dmv.yaml"),
                        help="policy file (default: $GATEWAY_POLICY or policies/colorado-dmv.yaml)")
    parser.add_argument("--requesters", default=os.environ.get("GATEWAY_REQUESTERS", "policies/requesters.example.yaml"),
                        help="requesters file (default: $GATEWAY_REQUESTERS or policies/requesters.example.yaml)")


def fail(command: str, message: str) -> int:
    print(f"gateway {command}: {message}", file=sys.stderr)
    return 1


async def connect_and_load(dsn: str) -> tuple[Any, Any]:
    """Connect with asyncpg and load the catalog; returns (connection, catalog)."""
    import asyncpg

    from gateway.catalog.introspect import load_catalog

    conn = await asyncpg.connect(dsn, timeout=10)
    return conn, await load_catalog(conn)


def load_policy_files(policy_path: str, requesters_path: str | None = None) -> tuple[Any, Any]:
    from gateway.identity.requesters import load_requesters
    from gateway.policy.load import load_policy

    from gateway.shipped import locate

    policy = load_policy(locate(policy_path, "policy file"))
    requesters = load_requesters(locate(requesters_path, "requesters file")) if requesters_path else None
    return policy, requesters


CONFIG_ERRORS: tuple[type[Exception], ...] = (ConfigError, FileNotFoundError)
