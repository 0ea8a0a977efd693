"""Check a request log's chain: every record's HMAC, ``seq`` and ``prev`` link, per instance.

:class:`ChainVerifier` is fed records in log order (line by line, file after file, or rows by
``seq`` from the audit database) and reports the first broken link of each instance's chain with
where it is (file and line), naming what it looks like: an edited record, deleted records, an
inserted or duplicated record, records out of order, a truncated file, or a wrong key. A torn last
line (a crash mid-write) is a warning, not tampering, when the chain continues past it untouched.
Earlier records missing at the start of a chain are accepted only when a ``retention`` checkpoint in
the chain accounts for them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.audit.chain import GENESIS, chain_key_for, check_hash
from gateway.audit.files import log_files, read_ends
from gateway.audit.tips import Anchor, read_tip_files


@dataclass(frozen=True)
class Finding:
    """One thing verify found. ``severity``: ``tampering`` (exit non-zero), ``warning`` or ``info``."""

    severity: str
    where: str  # "file line N" or "audit table, instance X seq N"
    message: str

    def __str__(self) -> str:
        label = {"tampering": "BROKEN", "warning": "WARNING", "info": "note"}[self.severity]
        return f"{label}: {self.where}: {self.message}"


@dataclass(frozen=True)
class VerifyResult:
    records: int
    chains: dict[str, tuple[int, int]]  # instance -> (first seq, last seq)
    findings: tuple[Finding, ...]
    sources: int = 0
    #: instance -> where its chain first broke (one chain per gateway worker or replica)
    broken: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "tampering" for f in self.findings)

    @property
    def first_break(self) -> Finding | None:
        return next((f for f in self.findings if f.severity == "tampering"), None)

    def status(self, instance: str) -> str:
        """``intact`` or ``broken`` (what this chain's own records show; tail and start findings too)."""
        return "broken" if instance in self.broken else "intact"

    def summary(self) -> str:
        """One line; with several chains (workers, replicas), each says whether it is intact."""
        several = len(self.chains) > 1
        chains = ", ".join(
            f"{inst or '(no instance)'} seq {a}..{b}"
            + ((f" BROKEN at {self.broken[inst]}" if inst in self.broken else " intact") if several else "")
            for inst, (a, b) in sorted(self.chains.items()))
        state = "chain intact" if self.ok else "CHAIN BROKEN"
        return f"{state}: {self.records} records in {self.sources} source(s); {chains or 'no records'}"


@dataclass
class _Chain:
    first_seq: int = 0
    seq: int = 0
    hash: str = ""
    where: str = ""
    broken: bool = False
    pending_torn: str | None = None  # a torn line seen at the end of the previous file
    retained_through: int = 0
    closed: bool = False
    hmac_checked: int = 0
    gap: tuple[int, int, int] | None = None  # (first missing, last missing, finding index)
    key_suspect: int | None = None  # finding index when the very first HMAC failed
    break_where: str = ""


@dataclass
class ChainVerifier:
    """Feed records with :meth:`feed` (or torn lines with :meth:`torn`), then call :meth:`result`."""

    log_key: bytes
    findings: list[Finding] = field(default_factory=list)
    chains: dict[str, _Chain] = field(default_factory=dict)
    records: int = 0
    sources: int = 0
    #: the chain's end as tip files, the tip table or a previous report saw it (tail truncation)
    anchors: list[Anchor] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key = chain_key_for(self.log_key)
        self._anchored: dict[tuple[str, int], list[Anchor]] = {}
        for anchor in self.anchors:
            self._anchored.setdefault((anchor.instance, anchor.seq), []).append(anchor)
        self._confirmed: set[Anchor] = set()

    def _break(self, chain: _Chain, where: str, message: str) -> None:
        if not chain.broken:
            chain.break_where = where
        chain.broken = True
        self.findings.append(Finding("tampering", where, message))

    def unreadable(self, where: str, message: str, instance: str | None = None) -> None:
        """A line that is not a record (not JSON, or cut short in the middle of a file)."""
        if instance is not None and instance in self.chains:
            self._break(self.chains[instance], where, message)
        else:
            self.findings.append(Finding("tampering", where, message))

    def torn(self, where: str, instance: str | None) -> None:
        """The last line of a file has no newline: a write cut short by a crash (or a truncation)."""
        chain = self.chains.get(instance or "")
        if chain is not None:
            chain.pending_torn = where
        self.findings.append(
            Finding("warning", where, "torn last line (the gateway stopped mid-write); it was never acknowledged")
        )

    def feed(self, record: dict[str, Any], where: str) -> None:
        self.records += 1
        instance = str(record.get("instance", ""))
        chain = self.chains.setdefault(instance, _Chain())
        if chain.broken:
            self._after_break(chain, record, where)
            return
        seq, prev = record.get("seq"), record.get("prev")
        if not isinstance(seq, int) or not isinstance(prev, str):
            self._break(chain, where, "record without seq/prev: not written by the gateway's chain")
            return
        if not check_hash(self._key, record):
            if chain.hmac_checked == 0:
                chain.key_suspect = len(self.findings)
                self._break(chain, where, f"HMAC of seq {seq} does not match: the record was edited (or wrong key)")
            else:
                self._break(chain, where, f"record seq {seq} was edited: its HMAC does not match its content")
            return
        chain.hmac_checked += 1
        for anchor in self._anchored.get((instance, seq), ()):
            if anchor.hash == record["hash"]:
                self._confirmed.add(anchor)
            else:
                self._confirmed.add(anchor)
                self._break(chain, where, f"seq {seq} is not the record {anchor.source} saw there (its hash differs): "
                            "the log was rewritten from this point")
                return
        if chain.seq == 0:
            chain.first_seq = seq
            if seq == 1 and prev != GENESIS:
                self._break(chain, where, "seq 1 does not start from the genesis link")
                return
        elif seq <= chain.seq:
            kind = "a duplicated or inserted record" if seq == chain.seq else "records out of order (reordered)"
            self._break(chain, where, f"seq {seq} follows seq {chain.seq} at {chain.where}: {kind}")
            return
        elif seq != chain.seq + 1:
            cut = f" after a torn line at {chain.pending_torn}" if chain.pending_torn else ""
            chain.gap = (chain.seq + 1, seq - 1, len(self.findings))
            self._break(
                chain, where, f"seq {chain.seq + 1}..{seq - 1} missing{cut}: records deleted or the log truncated "
                f"(last good record at {chain.where})"
            )
            return
        elif prev != chain.hash:
            self._break(chain, where, f"seq {seq} does not link to seq {chain.seq} at {chain.where}: record inserted")
            return
        chain.seq, chain.hash, chain.where, chain.pending_torn = seq, record["hash"], where, None
        if record.get("type") == "checkpoint":
            if record.get("reason") == "retention":
                chain.retained_through = max(chain.retained_through, int(record.get("removed_through_seq", 0)))
            chain.closed = record.get("reason") == "close"
        else:
            chain.closed = False

    def _after_break(self, chain: _Chain, record: dict[str, Any], where: str) -> None:
        """Past the first break, only refine its diagnosis (wrong key; reorder rather than deletion)."""
        if chain.key_suspect is not None:
            index, chain.key_suspect = chain.key_suspect, None
            if not check_hash(self._key, record):
                old = self.findings[index]
                self.findings[index] = Finding(
                    "tampering", old.where, "wrong key: no record's HMAC matches (or every record was edited)"
                )
        seq = record.get("seq")
        if chain.gap is not None and isinstance(seq, int) and chain.gap[0] <= seq <= chain.gap[1]:
            first, _last, index = chain.gap
            old = self.findings[index]
            self.findings[index] = Finding(
                "tampering", old.where, f"records out of order: seq {first} expected here, seq {seq} "
                f"found later at {where} (reordered)"
            )
            chain.gap = None

    def result(self) -> VerifyResult:
        findings = list(self.findings)
        spans: dict[str, tuple[int, int]] = {}
        broken: dict[str, str] = {}
        for instance, chain in self.chains.items():
            spans[instance] = (chain.first_seq, chain.seq)
            if chain.broken:
                broken[instance] = chain.break_where
            if chain.first_seq > 1 and chain.retained_through < chain.first_seq - 1 and not chain.broken:
                broken[instance] = "its start"
                findings.append(
                    Finding(
                        "tampering",
                        f"instance {instance!r}",
                        f"the chain starts at seq {chain.first_seq}: seq 1..{chain.first_seq - 1} are missing "
                        "and no retention checkpoint accounts for them",
                    )
                )
            elif chain.first_seq > 1:
                findings.append(
                    Finding("info", f"instance {instance!r}", f"seq 1..{chain.first_seq - 1} removed by retention")
                )
            if not chain.broken and not chain.closed:
                findings.append(
                    Finding(
                        "info",
                        f"instance {instance!r}",
                        f"the chain ends at seq {chain.seq} without a closing checkpoint (gateway running, or "
                        "stopped without closing the log)",
                    )
                )
        tail = self._tail_findings()
        for finding in tail:
            instance = finding.where.removeprefix("instance ").strip("'")
            if finding.severity == "tampering" and instance in spans:
                broken.setdefault(instance, "its end")
        findings.extend(tail)
        return VerifyResult(self.records, spans, tuple(findings), self.sources, broken)

    def _tail_findings(self) -> list[Finding]:
        """Each anchor either found in the log, or the records after the log's end are missing."""
        out = []
        for anchor in self.anchors:
            if anchor in self._confirmed:
                out.append(Finding("info", f"instance {anchor.instance!r}",
                                   f"seq {anchor.seq} matches {anchor.source}: nothing before it was cut off"))
                continue
            chain = self.chains.get(anchor.instance)
            if chain is None:
                out.append(Finding("tampering", f"instance {anchor.instance!r}",
                                   f"no record of this instance in the log, but {anchor.source} saw its chain "
                                   f"through seq {anchor.seq}: the log was cut off or removed"))
            elif chain.broken:
                continue
            elif anchor.seq < chain.first_seq:
                out.append(Finding("info", f"instance {anchor.instance!r}",
                                   f"seq {anchor.seq} ({anchor.source}) is before the log's first record (retention)"))
            elif chain.seq < anchor.seq:
                out.append(Finding("tampering", f"instance {anchor.instance!r}",
                                   f"the log ends at seq {chain.seq} ({chain.where}) but {anchor.source} saw seq "
                                   f"{anchor.seq}: {anchor.seq - chain.seq} record(s) cut off the end"))
        return out


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            yield number, raw


def order_files(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Files ordered by (instance, first seq); and the files that hold no whole record."""
    keyed, empty = [], []
    for path in paths:
        first = read_ends(path).first
        if first is None or not isinstance(first.get("seq"), int):
            empty.append(path)
        else:
            keyed.append(((str(first.get("instance", "")), first["seq"], str(path)), path))
    return [p for _, p in sorted(keyed)], empty


def verify_files(paths: Iterable[Path], log_key: bytes, anchors: Iterable[Anchor] = ()) -> VerifyResult:
    """Verify the log files at ``paths`` (directories are expanded to their ``*.jsonl*`` files), and
    the log's end against the tip files beside them and ``anchors`` (a previous report's)."""
    paths = list(paths)
    verifier = ChainVerifier(log_key, anchors=[*read_tip_files(paths), *anchors])
    ordered, empty = order_files(log_files(paths))
    for path in empty:
        verifier.sources += 1
        if path.stat().st_size:
            verifier.torn(f"{path.name} line 1", None)
    for path in ordered:
        verifier.sources += 1
        instance: str | None = None
        for number, raw in _lines(path):
            where = f"{path.name} line {number}"
            if not raw.endswith(b"\n"):
                verifier.torn(where, instance)
                break
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                verifier.unreadable(where, "not a whole JSON record (edited or cut in the middle)", instance)
                continue
            if not isinstance(record, dict):
                verifier.unreadable(where, "not a JSON object", instance)
                continue
            instance = str(record.get("instance", ""))
            verifier.feed(record, where)
    return verifier.result()


def iter_records(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Every whole record of the files at ``paths``, in chain order (unreadable lines skipped)."""
    ordered, _ = order_files(log_files(list(paths)))
    for path in ordered:
        for _, raw in _lines(path):
            if not raw.endswith(b"\n"):
                break
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(record, dict):
                yield record
