"""The hash chain: ``seq``, ``prev`` and ``hash`` on every record, and checkpoint records.

``hash`` = HMAC-SHA256(chain key, canonical JSON of the record without ``hash``), where the chain key
is derived from the log key and the canonical JSON has sorted keys and no spaces. ``prev`` is the
``hash`` of the record before it in the same instance's chain (:data:`GENESIS` for ``seq`` 1), so an
edited, deleted, inserted or reordered record breaks the chain; without the key nobody can forge a
replacement. The written line is the canonical JSON with ``"hash"`` appended as the last member.

Pure: no I/O, no clock except what the caller passes.

>>> chain = ChainState(b"k" * 32, instance="gw1")
>>> first, line = chain.seal({"type": "request", "request_id": "r1"})
>>> first["seq"], first["prev"] == GENESIS, check_hash(chain.key, first)
(1, True, True)
>>> second, _ = chain.seal({"type": "request", "request_id": "r2"})
>>> second["prev"] == first["hash"]
True
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from gateway.audit.canonical import PREPARED, PreparedRecord, Signer, SplicedRecord, seal_prepared, seal_spliced
from gateway.audit.literals import derive_key

GENESIS = "0" * 64


def canonical_json(record: dict[str, Any]) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the bytes the HMAC covers (``hash`` excluded)."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def compute_hash(chain_key: bytes, record: dict[str, Any]) -> str:
    return hmac.digest(chain_key, canonical_json(record).encode("utf-8"), "sha256").hex()


def check_hash(chain_key: bytes, record: dict[str, Any]) -> bool:
    """Whether the record's ``hash`` is the HMAC of the rest of it under ``chain_key``."""
    claimed = record.get("hash")
    return isinstance(claimed, str) and hmac.compare_digest(claimed, compute_hash(chain_key, record))


def chain_key_for(log_key: bytes) -> bytes:
    return derive_key(log_key, "chain")


@dataclass
class ChainState:
    """The tip of one instance's chain; :meth:`seal` numbers, links and signs the next record.

    Mutable on purpose and owned by exactly one writer (the sink's writer task). ``log_key`` is the
    secret from ``audit.key``; the chain key is derived from it.
    """

    log_key: bytes
    instance: str
    seq: int = 0
    prev: str = GENESIS
    key: bytes = field(init=False, repr=False)
    signer: Signer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.key = chain_key_for(self.log_key)
        self.signer = Signer(self.key)

    def seal(self, record: dict[str, Any] | PreparedRecord | SplicedRecord) -> tuple[dict[str, Any], str]:
        """Assign ``seq``/``prev``/``instance``/``hash``; return the sealed record and its line.

        The state moves on only through :meth:`advance` semantics built in here; a caller whose write
        then fails must call :meth:`rewind` with the values it had before (see the file sink).
        """
        if isinstance(record, PREPARED):
            line = self.seal_line(record)
            sealed = record.as_dict()
            sealed["hash"] = self.prev
            return sealed, line
        sealed = dict(record)  # type: ignore[arg-type]
        sealed["instance"] = self.instance
        sealed["seq"] = self.seq + 1
        sealed["prev"] = self.prev
        body = canonical_json(sealed)
        digest = self.signer.hexdigest(body.encode("utf-8"))
        sealed["hash"] = digest
        self.seq += 1
        self.prev = digest
        return sealed, body[:-1] + ',"hash":"' + digest + '"}\n'

    def seal_line(self, record: PreparedRecord | SplicedRecord) -> str:
        """:meth:`seal` for a prepared or spliced record (its template lists ``instance``, ``seq`` and
        ``prev`` as dynamic): only the line, the static members were serialized once for the template."""
        return self.seal_bytes(record).decode("utf-8")

    def seal_bytes(self, record: PreparedRecord | SplicedRecord) -> bytes:
        """:meth:`seal_line` as the UTF-8 bytes written (the hot path: one compiled call per record)."""
        if type(record) is SplicedRecord:
            line, self.prev = seal_spliced(record, self.signer, json.dumps(self.instance, ensure_ascii=False),
                                           self.seq + 1, self.prev)
        else:
            line, self.prev = seal_prepared(record, self.signer, self.instance, self.seq + 1, self.prev)  # type: ignore[arg-type]
        self.seq += 1
        return line

    def mark(self) -> tuple[int, str]:
        """The current tip, to :meth:`rewind` to if a batch sealed after it is never written."""
        return self.seq, self.prev

    def rewind(self, mark: tuple[int, str]) -> None:
        self.seq, self.prev = mark


def checkpoint_record(reason: str, *, time: str, **extra: Any) -> dict[str, Any]:
    """A checkpoint (``reason``: start, rotate, periodic, retention, close). Its ``seq`` is the
    running count of records in the chain; the HMAC signs it like any record."""
    record: dict[str, Any] = {"schema": 1, "type": "checkpoint", "time": time, "reason": reason}
    record.update(extra)
    return record
