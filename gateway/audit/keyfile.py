"""The log key: a random 32-byte secret kept beside the log (``audit.key``, mode 0600).

Created on first start with a warning that names it: whoever holds it can forge records, so it
belongs with the operator, not the requesters. Stored as 64 hex digits and a newline.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import structlog

from gateway.errors import ConfigError

KEY_FILE_NAME = "audit.key"

log = structlog.get_logger("gateway.audit")


def key_path_for(log_path: Path) -> Path:
    """Where the key of the log at ``log_path`` lives (a directory means the log directory)."""
    return (log_path if log_path.is_dir() else log_path.parent) / KEY_FILE_NAME


def read_key(path: Path) -> bytes:
    """Read a key file (64 hex digits; raw 32 bytes accepted too)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the audit key {path}: {exc.strerror or exc}") from exc
    text = data.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = data
    if len(key) < 16:
        raise ConfigError(f"the audit key {path} is too short ({len(key)} bytes; 32 expected)")
    return key


def load_or_create_key(path: Path) -> bytes:
    """Read ``path``, or create it (32 random bytes, mode 0600) and warn, naming it."""
    if path.exists():
        return read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key.hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    log.warning(
        "audit_key_created",
        path=str(path),
        message=f"created a new request-log key at {path}; keep it safe and back it up: "
        "verify and search need it, and whoever holds it can forge records",
    )
    return key
