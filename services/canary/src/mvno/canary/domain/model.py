"""What a probe found and when it is worth telling: pure rules, no I/O.

A probe passes when the partner answered as expected within the latency threshold. Only a turn
(passing to failing, failing to passing) is announced, and each probe's first result: customers
are warned once, and told once when the partner is back, however many probes in between saw the
same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True)
class ProbeResult:
    probe: str
    target: str
    outcome: Outcome
    latency_seconds: float
    reason: str = ""
    slow: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS


def judge(
    probe: str,
    target: str,
    *,
    latency_seconds: float,
    threshold_seconds: float,
    error: str | None,
) -> ProbeResult:
    """The result of a probe that took ``latency_seconds`` and failed with ``error`` (or not)."""
    if error is not None:
        return ProbeResult(probe, target, Outcome.FAILURE, latency_seconds, error)
    if latency_seconds > threshold_seconds:
        reason = f"slow: {latency_seconds:.2f} s, above the {threshold_seconds:.2f} s threshold"
        return ProbeResult(probe, target, Outcome.FAILURE, latency_seconds, reason, slow=True)
    return ProbeResult(probe, target, Outcome.SUCCESS, latency_seconds)


@dataclass(frozen=True)
class Failed:
    result: ProbeResult


@dataclass(frozen=True)
class Recovered:
    result: ProbeResult


Turn = Failed | Recovered


@dataclass
class Watch:
    """Each probe's last outcome. A probe's first result is announced whichever it is, so that a
    consumer never keeps showing a failure that a restarted canary no longer sees; after that,
    only turns."""

    failing: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)

    def observe(self, result: ProbeResult) -> Turn | None:
        first = result.probe not in self.seen
        self.seen.add(result.probe)
        if result.ok:
            if first or result.probe in self.failing:
                self.failing.discard(result.probe)
                return Recovered(result)
            return None
        if result.probe in self.failing:
            return None
        self.failing.add(result.probe)
        return Failed(result)
