"""Tail anchors: the chain's end (last ``seq`` and ``hash``) kept outside the log, so that records cut
off the end of a log are noticed.

The hash chain catches a record deleted, edited or reordered *before* the last one; it cannot see the
last records cut off, since what remains is a valid, shorter chain. Three anchors are compared with
the log's end by ``gateway audit verify``: the tip file the file sink rewrites beside the log (``requests.tip.json``), the PostgreSQL sink's own ``<table>_tip`` table, and a previous
quarterly report (``--since-report PREVIOUS.json``), which the auditor keeps elsewhere. A tip file
or table is rewritten after every batch that holds a checkpoint and, besides, after a batch once a
second has passed since it last was: it lags the log by about a second. Whoever can rewrite the log
can rewrite them too; the report is the anchor the log's writer cannot reach.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.audit.files import write_all

SUFFIX = ".tip.json"


@dataclass(frozen=True)
class Anchor:
    """``seq`` and ``hash`` some source saw at the end of ``instance``'s chain."""

    instance: str
    seq: int
    hash: str
    source: str
    time: str = ""


def tip_path(log_path: Path) -> Path:
    return log_path.with_name(f"{log_path.stem}{SUFFIX}")


def read_tip_instances(path: Path) -> dict[str, Any]:
    """The instances a tip file holds now (empty when it is missing or unreadable)."""
    try:
        data = json.loads(path.read_text("utf-8"))
        instances = data.get("instances") if isinstance(data, dict) else None
    except (OSError, ValueError):
        instances = None
    return dict(instances) if isinstance(instances, dict) else {}


def write_tip(path: Path, tip: dict[str, Any], instances: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record ``tip`` (instance, seq, hash, time) for its instance in the tip file, atomically (a
    temporary file beside it, fsync'ed, renamed over it). ``instances``: what the file holds, as the
    last call returned it (the file sink keeps it: one writer per log), else the file is read first.
    Returns the instances written. Five system calls when ``instances`` is given (the writer thread
    gives the GIL up in each)."""
    instances = dict(read_tip_instances(path) if instances is None else instances)
    instances[str(tip["instance"])] = {"seq": tip["seq"], "hash": tip["hash"], "time": tip["time"]}
    data = json.dumps({"version": 1, "instances": instances}, sort_keys=True).encode("utf-8")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return instances


def _anchors(instances: Any, source: str) -> list[Anchor]:
    out = []
    for instance, tip in (instances or {}).items():
        if isinstance(tip, dict) and isinstance(tip.get("seq"), int) and isinstance(tip.get("hash"), str):
            out.append(Anchor(str(instance), tip["seq"], tip["hash"], source, str(tip.get("time", ""))))
    return out


def read_tip_files(paths: Iterable[Path]) -> list[Anchor]:
    """Anchors from every ``*.tip.json`` in the folders of ``paths`` (files or folders)."""
    folders = {p if p.is_dir() else p.parent for p in paths}
    out: list[Anchor] = []
    for folder in sorted(folders):
        for tip in sorted(folder.glob(f"*{SUFFIX}")):
            try:
                data = json.loads(tip.read_text("utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                out.extend(_anchors(data.get("instances"), f"tip file {tip.name}"))
    return out


def read_report(path: Path) -> list[Anchor]:
    """Anchors from a quarterly report in JSON (``gateway report --format json``); raises ValueError."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path} is not a JSON report: {exc}") from None
    if not isinstance(data, dict) or "chain_tips" not in data:
        raise ValueError(f"{path} holds no chain_tips (a report written by `gateway report --format json`)")
    return _anchors(data["chain_tips"], f"report {data.get('quarter', path.name)}")
