"""The canary against the real simulators and the real SNS/SQS protocol: outages and slowness
reported within one round and their recovery after, no side effect left at the bank, and the
metrics the alarms read."""

from __future__ import annotations

from typing import Any

import pytest

from mvno.canary.domain.model import Outcome
from mvno.canary.runner import DURATION_METRIC, PROBES_METRIC
from mvno.devstack.testing import metric_points

SIMULATED = {"network-operator": "mno", "payments": "payments", "billing-platform": "billing"}
PROBES_OF = {
    "network-operator": {"network-operator.health", "network-operator.numbers"},
    "payments": {"payments.health", "payments.authorise_void"},
    "billing-platform": {"billing-platform.health", "billing-platform.accounts"},
}
ACCOUNT = "4000000099"


@pytest.mark.parametrize("target", list(SIMULATED))
async def test_an_outage_is_reported_in_the_next_round_and_its_recovery_after(
    target: str, partners: Any, bus: Any, make_canary: Any
) -> None:
    async with make_canary() as canary:
        healthy = await canary.tick(bus.publisher)
        assert [r.probe for r in healthy if not r.ok] == []
        # A canary that starts says where each probe stands, then only what changes.
        started = await bus.received(len(healthy))
        assert {e.type for e in started} == {"platform.canary.recovered.v1"}
        await canary.tick(bus.publisher)
        await bus.nothing_more()

        await partners.fault(SIMULATED[target], {"outage": True})
        down = await canary.tick(bus.publisher)
        assert {r.probe for r in down if not r.ok} == PROBES_OF[target]
        failed = await bus.received(len(PROBES_OF[target]))
        assert {e.type for e in failed} == {"platform.canary.failed.v1"}
        assert {e.subject for e in failed} == PROBES_OF[target]
        assert {e.data["target"] for e in failed} == {target}
        assert all("503" in e.data["reason"] and not e.data["slow"] for e in failed)

        await canary.tick(bus.publisher)  # still down: said once, not every round
        await bus.nothing_more()

        await partners.clear()
        back = await canary.tick(bus.publisher)
        assert all(r.ok for r in back)
        recovered = await bus.received(len(PROBES_OF[target]))
        assert {e.type for e in recovered} == {"platform.canary.recovered.v1"}
        assert {e.subject for e in recovered} == PROBES_OF[target]


async def test_latency_above_the_threshold_is_a_failure(
    partners: Any, bus: Any, make_canary: Any
) -> None:
    async with make_canary(canary_latency_threshold_seconds=0.2) as canary:
        await canary.tick(bus.publisher)
        await bus.received(6)  # where each probe stands at start
        await partners.fault("billing", {"latencyMs": 400})
        results = {r.probe: r for r in await canary.tick(bus.publisher)}
        slow = results["billing-platform.health"]
        assert slow.outcome is Outcome.FAILURE
        assert slow.slow
        assert "above the 0.20 s threshold" in slow.reason
        assert results["payments.health"].ok
        events = await bus.received(2)
        assert {e.subject for e in events} == PROBES_OF["billing-platform"]
        assert all(e.data["slow"] for e in events)


async def test_the_continuous_run_reports_within_an_interval(
    partners: Any, bus: Any, make_canary: Any
) -> None:
    import asyncio

    async with make_canary(canary_probes=("payments.health",)) as canary:
        stop = asyncio.Event()
        running = asyncio.create_task(canary.run(bus.publisher, stop))
        try:
            (first,) = await bus.received(1)
            assert first.type == "platform.canary.recovered.v1"
            await partners.fault("payments", {"outage": True})
            (failed,) = await bus.received(1, within=canary.settings.canary_interval_seconds + 10)
            assert failed.type == "platform.canary.failed.v1"
            await partners.clear()
            (recovered,) = await bus.received(1)
            assert recovered.type == "platform.canary.recovered.v1"
        finally:
            stop.set()
            await asyncio.wait_for(running, 10)


async def test_the_canary_leaves_no_authorisation_behind(
    partners: Any, bus: Any, make_canary: Any
) -> None:
    opening = (await partners.account(ACCOUNT))["balanceCents"]
    async with make_canary(canary_probes=("payments.authorise_void",)) as canary:
        (ok,) = await canary.tick(bus.publisher)
        assert ok.ok

        # The void fails: the hold stays until a later round voids it.
        await partners.fault("payments", {"outage": True}, operation="void_payment")
        (failed,) = await canary.tick(bus.publisher)
        assert not failed.ok
        assert (await partners.account(ACCOUNT))["heldCents"] > 0

        # The authorisation happens but its answer is lost: the canary cannot know its id.
        await partners.fault(
            "payments", {"lostResponseRate": 1, "timeoutSeconds": 5}, operation="authorise_payment"
        )
        (lost,) = await canary.tick(bus.publisher)
        assert not lost.ok

        await partners.clear()
        (back,) = await canary.tick(bus.publisher)
        assert back.ok
        assert canary.payments.unsettled == {}
    account = await partners.account(ACCOUNT)
    assert account["heldCents"] == 0
    assert account["balanceCents"] == opening


async def test_each_probe_is_measured_by_outcome(
    partners: Any, bus: Any, make_canary: Any, metric_reader: Any
) -> None:
    def count(outcome: str) -> int:
        points = metric_points(
            metric_reader, PROBES_METRIC, probe="network-operator.health", outcome=outcome
        )
        return sum(p.value for p in points)

    before = count("success"), count("failure")
    async with make_canary(canary_probes=("network-operator.health",)) as canary:
        await canary.tick(bus.publisher)
        await partners.fault("mno", {"outage": True})
        await canary.tick(bus.publisher)
    assert (count("success"), count("failure")) == (before[0] + 1, before[1] + 1)
    durations = metric_points(
        metric_reader, DURATION_METRIC, probe="network-operator.health", outcome="failure"
    )
    assert sum(p.count for p in durations) >= 1


async def test_probes_run_while_the_bus_is_unreachable_and_their_turns_follow(
    partners: Any, bus: Any, make_canary: Any
) -> None:
    from mvno.canary.integration import Publisher

    reachable = False

    async def topic_arn() -> str:
        if not reachable:
            raise ConnectionError("the bus is unreachable")
        return str(bus.topic_arn)

    publisher = Publisher(bus.sns, topic_arn)
    async with make_canary(canary_probes=("payments.health",)) as canary:
        await partners.fault("payments", {"outage": True})
        (down,) = await canary.tick(publisher)
        assert not down.ok, "probed and judged without the bus"
        await bus.nothing_more()
        reachable = True
        await canary.tick(publisher)  # still down: nothing new, the kept event goes out
    (failed,) = await bus.received(1)
    assert failed.type == "platform.canary.failed.v1"
    assert publisher.pending == []
