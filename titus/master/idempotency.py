"""Idempotent job submission: the ``Idempotency-Key`` header.

A client that did not see the answer to ``POST /api/v3/jobs`` (a timeout, a dropped connection)
sends it again with the same key: the master answers with the first job's id and creates no
second job. The key is scoped to the caller (two callers may use the same key), kept for
``idempotency_keep_sec`` (default 24 h, as Stripe and the IETF draft
``draft-ietf-httpapi-idempotency-key-header`` suggest) and stored with the job in one
transaction, so it survives a restart. The same key with a different body is refused with
:class:`KeyReused` (HTTP 422): the body is compared by a SHA-256 of its canonical JSON, so
whitespace and key order do not matter.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Optional

from titus.boundary import Problem, SpecError

MAX_KEY_CHARS = 255


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A remembered submission: who sent it, the key, the body's digest, the job it made."""

    scope: str
    key: str
    body_sha256: str
    job_id: str = ""
    created_at: float = 0.0

    def row(self) -> dict:
        """The store row."""
        return {"scope": self.scope, "key": self.key, "body_sha256": self.body_sha256,
                "job_id": self.job_id, "created_at": self.created_at}

    @classmethod
    def from_row(cls, row: dict) -> "IdempotencyKey":
        """From a store row."""
        return cls(row["scope"], row["key"], row["body_sha256"], row["job_id"],
                   row["created_at"])


class KeyReused(ValueError):
    """The Idempotency-Key was used before with another body (HTTP 422)."""

    def __init__(self, key: str, job_id: str):
        super().__init__(f"Idempotency-Key {key!r} was used for another body (job {job_id})")
        self.key = key
        self.job_id = job_id


def body_digest(data: Any) -> str:
    """SHA-256 of ``data`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def parse_key(raw: Optional[str]) -> Optional[str]:
    """The header's key, or None if absent; :class:`SpecError` unless it is 1..255 printable
    ASCII characters."""
    if raw is None:
        return None
    if not (0 < len(raw) <= MAX_KEY_CHARS) or not all(32 < ord(c) < 127 for c in raw):
        raise SpecError([Problem("Idempotency-Key", f"must be 1 to {MAX_KEY_CHARS} printable "
                                                    "ASCII characters without spaces", raw)],
                        "request")
    return raw
