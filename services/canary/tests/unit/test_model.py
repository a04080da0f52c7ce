"""When a probe's result is worth announcing, and how results are judged and shown."""

from __future__ import annotations

import json

from mvno.canary.domain.model import Failed, Outcome, ProbeResult, Recovered, Watch, judge
from mvno.canary.report import as_json, as_table


def result(ok: bool, probe: str = "payments.health") -> ProbeResult:
    outcome = Outcome.SUCCESS if ok else Outcome.FAILURE
    return ProbeResult(probe, "payments", outcome, 0.01, "" if ok else "answered 503")


def test_the_first_result_and_then_only_turns_are_announced() -> None:
    watch = Watch()
    assert isinstance(watch.observe(result(True)), Recovered), "a restarted canary says so"
    assert watch.observe(result(True)) is None
    assert isinstance(watch.observe(result(False)), Failed)
    assert watch.observe(result(False)) is None
    assert isinstance(watch.observe(result(True)), Recovered)
    assert watch.observe(result(True)) is None


def test_a_first_failure_is_announced_once() -> None:
    watch = Watch()
    assert isinstance(watch.observe(result(False)), Failed)
    assert watch.observe(result(False)) is None


def test_an_answer_slower_than_the_threshold_fails_and_says_so() -> None:
    slow = judge("p", "payments", latency_seconds=2.5, threshold_seconds=2.0, error=None)
    assert slow.outcome is Outcome.FAILURE
    assert slow.slow
    assert "2.50 s" in slow.reason
    fast = judge("p", "payments", latency_seconds=0.5, threshold_seconds=2.0, error=None)
    assert fast.ok
    assert not fast.slow
    error = judge("p", "payments", latency_seconds=0.1, threshold_seconds=2.0, error="503")
    assert error.outcome is Outcome.FAILURE
    assert not error.slow
    assert error.reason == "503"


def test_the_table_and_json_carry_probe_result_latency_and_reason() -> None:
    results = [result(True), result(False, probe="billing-platform.health")]
    table = as_table(results).splitlines()
    assert table[0].split() == ["probe", "result", "latency", "reason"]
    assert table[1].split()[:3] == ["payments.health", "success", "10"]
    assert table[2].startswith("billing-platform.health  failure")
    assert "answered 503" in table[2]
    assert table[-1] == "1 passed, 1 failed"
    parsed = json.loads(as_json(results))
    assert parsed["ok"] is False
    assert parsed["probes"][1] == {
        "probe": "billing-platform.health",
        "target": "payments",
        "result": "failure",
        "latency_seconds": 0.01,
        "reason": "answered 503",
    }
