"""The append-only, hash-chained audit log: the chain of custody of alerts, trips and tokens.

Each record's hash is ``sha256(prev_hash + canonical_json(record))`` where ``record`` is
``{"seq", "at", "actor", "action", "subject", "data"}`` and canonical JSON means sorted keys, no
whitespace, UTF-8. The first record's ``prev_hash`` is 64 zeros. The hash of the newest record is also
kept in ``meta`` (``audit_head``) so that deleting records from the end of the chain is noticed too.
Anyone with the database file can re-check the chain with ``kawal audit verify``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storage import Connection, Database

GENESIS_HASH = "0" * 64
HEAD_KEY = "audit_head"
_VERIFY_BATCH = 5000


def _clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become strings, so canonical JSON never fails."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def canonical_json(value: Any) -> str:
    return json.dumps(
        _clean(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def record_hash(prev_hash: str, seq: int, at: float, actor: str, action: str, subject: str, data: Any) -> str:
    record = {"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject, "data": data}
    return hashlib.sha256((prev_hash + canonical_json(record)).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: float
    actor: str
    action: str
    subject: str
    data: Any
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head_hash: str | None = None  # hash of the last record: keep it elsewhere to anchor the chain


class AuditLog:
    """Appends records inside the caller's write transaction and verifies the chain."""

    def __init__(self, db: Database, now: Callable[[], float] = time.time) -> None:
        self.db = db
        self._now = now

    def append(
        self, conn: Connection, actor: str, action: str, subject: str, data: Any = None
    ) -> AuditRecord:
        """Add one record. `conn` must be in a write transaction (``Database.write()``), which serialises
        appends, so the chain never forks."""
        if not conn.in_transaction:
            raise RuntimeError("AuditLog.append needs the caller's write transaction")
        # Lock the head row first: on PostgreSQL this orders concurrent appenders (the next one reads the
        # chain after this commit); on SQLite the write transaction already holds the only write lock.
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, '') ON CONFLICT (key) DO UPDATE SET value = meta.value",
            (HEAD_KEY,),
        )
        row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (1, GENESIS_HASH) if row is None else (int(row[0]) + 1, str(row[1]))
        at = self._now()
        clean = _clean(data if data is not None else {})
        digest = record_hash(prev, seq, at, actor, action, subject, clean)
        conn.execute(
            "INSERT INTO audit (seq, at, actor, action, subject, data, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, at, actor, action, subject, canonical_json(clean), prev, digest),
        )
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (HEAD_KEY, f"{seq}:{digest}"),
        )
        return AuditRecord(seq, at, actor, action, subject, clean, prev, digest)

    def records(self, after_seq: int = 0, limit: int = 100, subject: str | None = None) -> list[AuditRecord]:
        q = "SELECT * FROM audit WHERE seq > ?"
        args: list[Any] = [after_seq]
        if subject is not None:
            q += " AND subject = ?"
            args.append(subject)
        q += " ORDER BY seq LIMIT ?"
        args.append(limit)
        return [_row_record(r) for r in self.db.conn().execute(q, args)]

    def find_hash(self, digest: str) -> AuditRecord | None:
        """The record with this hash, if any (a receipt names its handover by hash)."""
        row = self.db.conn().execute("SELECT * FROM audit WHERE hash = ?", (digest,)).fetchone()
        return None if row is None else _row_record(row)

    def verify(self) -> VerifyResult:
        """Re-check every record in order, in one read snapshot. Names the first record that is wrong."""
        with self.db.read() as conn:  # one consistent snapshot while the service keeps appending
            prev_hash, expected_seq, checked = GENESIS_HASH, 1, 0
            after = 0
            while True:
                rows = conn.execute(
                    "SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (after, _VERIFY_BATCH)
                ).fetchall()
                if not rows:
                    break
                for r in rows:
                    seq = int(r["seq"])
                    if seq != expected_seq:
                        return VerifyResult(
                            False, checked, expected_seq, f"record {expected_seq} is missing (next is {seq})"
                        )
                    if r["prev_hash"] != prev_hash:
                        return VerifyResult(
                            False, checked, seq, f"record {seq} does not link to the hash of record {seq - 1}"
                        )
                    try:
                        data = json.loads(r["data"])
                    except ValueError:
                        return VerifyResult(False, checked, seq, f"record {seq} has unreadable data")
                    digest = record_hash(
                        prev_hash,
                        seq,
                        float(r["at"]),
                        str(r["actor"]),
                        str(r["action"]),
                        str(r["subject"]),
                        data,
                    )
                    if digest != r["hash"]:
                        return VerifyResult(
                            False,
                            checked,
                            seq,
                            f"record {seq} was altered: its content does not match its hash",
                        )
                    prev_hash, expected_seq, checked = digest, seq + 1, checked + 1
                after = int(rows[-1]["seq"])
            head = conn.execute("SELECT value FROM meta WHERE key = ?", (HEAD_KEY,)).fetchone()
            if head is not None:
                head_seq_s, _, head_hash = str(head[0]).partition(":")
                head_seq = int(head_seq_s)
                if head_seq > checked:
                    return VerifyResult(
                        False,
                        checked,
                        checked + 1,
                        f"records {checked + 1} to {head_seq} were deleted from the end",
                    )
                if head_seq < checked:
                    return VerifyResult(
                        False,
                        checked,
                        head_seq + 1,
                        f"records after {head_seq} were added outside the audit log",
                    )
                if head_hash != prev_hash:
                    return VerifyResult(
                        False,
                        checked,
                        head_seq,
                        f"record {head_seq} does not match the recorded head of the chain",
                    )
            elif checked:
                return VerifyResult(False, checked, checked, "the head of the chain is missing")
            return VerifyResult(True, checked, head_hash=prev_hash if checked else None)


def _row_record(r: Any) -> AuditRecord:
    return AuditRecord(
        seq=int(r["seq"]),
        at=float(r["at"]),
        actor=str(r["actor"]),
        action=str(r["action"]),
        subject=str(r["subject"]),
        data=json.loads(r["data"]),
        prev_hash=str(r["prev_hash"]),
        hash=str(r["hash"]),
    )
