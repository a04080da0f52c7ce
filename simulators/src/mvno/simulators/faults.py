"""Fault injection: what a partner's call suffers before (or after) the partner handles it.

Rules are keyed by partner and optionally by operation (the route's name, e.g.
``activate_subscription``); an operation's own rule replaces its partner's rule entirely, so a
rule reads on its own. Decisions come from a seeded generator, so a run with the same seed and
the same calls suffers the same faults.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class FaultRule(BaseModel):
    """What to do to every call a rule covers. All zero (the default) means no fault."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    latency_ms: int = Field(default=0, ge=0, le=600_000, description="Fixed latency added")
    jitter_ms: int = Field(
        default=0, ge=0, le=600_000, description="Random latency added on top, uniform up to this"
    )
    error_rate: float = Field(default=0, ge=0, le=1, description="Share of calls answered 5xx")
    error_status: Literal[500, 502, 503, 504] = Field(
        default=500, description="The status of an injected error"
    )
    timeout_rate: float = Field(
        default=0, ge=0, le=1, description="Share of calls that get no answer (held open)"
    )
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="How long an unanswered call is held; the server's default when not set",
    )
    lost_response_rate: float = Field(
        default=0,
        ge=0,
        le=1,
        description=(
            "Share of mutating calls that take effect but whose answer is lost (held like a"
            " timeout): a retry with the same Idempotency-Key must get the original result"
        ),
    )
    outage: bool = Field(default=False, description="Every call is answered 503 at once")


class Outcome(StrEnum):
    ANSWER = "answer"  # handle the call (after the delay)
    ERROR = "error"
    OUTAGE = "outage"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    delay_seconds: float = 0.0
    status: int = 503
    hold_seconds: float = 0.0


class UnknownOperation(ValueError):
    pass


class FaultTable:
    def __init__(
        self,
        rng: random.Random,
        operations: Mapping[str, frozenset[str]],
        *,
        default_timeout_seconds: float,
    ) -> None:
        self.rng = rng
        self.operations = operations  # partner -> the names of its operations
        self.default_timeout_seconds = default_timeout_seconds
        self.rules: dict[tuple[str, str | None], FaultRule] = {}

    def check(self, partner: str, operation: str | None) -> None:
        if partner not in self.operations:
            raise UnknownOperation(
                f"unknown partner {partner!r}; partners: {', '.join(sorted(self.operations))}"
            )
        if operation is not None and operation not in self.operations[partner]:
            known = ", ".join(sorted(self.operations[partner]))
            raise UnknownOperation(
                f"{partner} has no operation {operation!r}; its operations: {known}"
            )

    def set(self, partner: str, operation: str | None, rule: FaultRule) -> None:
        self.check(partner, operation)
        self.rules[(partner, operation)] = rule

    def clear(self, partner: str | None = None, operation: str | None = None) -> None:
        if partner is None:
            self.rules.clear()
            return
        self.check(partner, operation)
        self.rules.pop((partner, operation), None)

    def rule_for(self, partner: str, operation: str) -> FaultRule | None:
        return self.rules.get((partner, operation)) or self.rules.get((partner, None))

    def verdict(self, partner: str, operation: str) -> Verdict | None:
        """What happens to this call; None, the common case, when no rule covers it."""
        if not self.rules:
            return None
        rule = self.rule_for(partner, operation)
        if rule is None:
            return None
        if rule.outage:
            return Verdict(Outcome.OUTAGE, status=503)
        if rule.timeout_rate and self.rng.random() < rule.timeout_rate:
            return Verdict(Outcome.TIMEOUT, hold_seconds=self._hold(rule))
        delay = rule.latency_ms / 1000
        if rule.jitter_ms:
            delay += self.rng.uniform(0, rule.jitter_ms / 1000)
        if rule.error_rate and self.rng.random() < rule.error_rate:
            return Verdict(Outcome.ERROR, delay_seconds=delay, status=rule.error_status)
        return Verdict(Outcome.ANSWER, delay_seconds=delay)

    def lost_response_hold(self, partner: str, operation: str) -> float | None:
        """Seconds to hold a call that took effect, when its answer is to be lost."""
        if not self.rules:
            return None
        rule = self.rule_for(partner, operation)
        if rule is None or not rule.lost_response_rate:
            return None
        if self.rng.random() < rule.lost_response_rate:
            return self._hold(rule)
        return None

    def _hold(self, rule: FaultRule) -> float:
        return rule.timeout_seconds or self.default_timeout_seconds
