"""Stored answers of mutating calls, keyed by partner, operation and Idempotency-Key.

A well-behaved partner answers a repeated call with the answer it gave the first time, refusals
included, and refuses a key reused for a different request. Answers are kept for a day (like
the partners the simulators stand in for), measured on the simulators' clock.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

Scope = tuple[str, str, str]  # partner, operation, key


@dataclass(frozen=True)
class StoredAnswer:
    fingerprint: str
    status: int
    body: bytes  # the JSON answer as sent, so a replay is byte for byte the first answer
    media_type: str
    stored_at: datetime


def fingerprint(path: str, body: bytes) -> str:
    """The request an answer belongs to: its path (which names the resource) and its body, as
    the parsed request model serialises it (so key order and spacing do not matter)."""
    return hashlib.sha256(path.encode() + b"\n" + body).hexdigest()


class IdempotencyStore:
    def __init__(self, ttl: timedelta) -> None:
        self.ttl = ttl
        self.answers: OrderedDict[Scope, StoredAnswer] = OrderedDict()

    def get(self, scope: Scope, now: datetime) -> StoredAnswer | None:
        self._forget_before(now - self.ttl)
        return self.answers.get(scope)

    def put(self, scope: Scope, answer: StoredAnswer) -> None:
        self.answers[scope] = answer

    def _forget_before(self, oldest: datetime) -> None:
        # Stored in time order, so the expired ones are all at the front.
        while self.answers:
            scope, answer = next(iter(self.answers.items()))
            if answer.stored_at >= oldest:
                return
            del self.answers[scope]
