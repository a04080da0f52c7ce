"""Runs every probe, records each result as metrics, and announces the turns on the bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
from opentelemetry import metrics

from mvno.canary.domain.model import ProbeResult, Watch
from mvno.canary.integration import PRODUCER, Publisher, to_event
from mvno.canary.probes import PaymentProbe, Probe, probes, run_probe
from mvno.canary.settings import CanarySettings
from mvno.common.aws import aws_client
from mvno.common.bus.provision import resolve
from mvno.common.bus.topology import platform_topology

_log = logging.getLogger(__name__)

PROBES_METRIC = "mvno.canary.probes"
DURATION_METRIC = "mvno.canary.probe.duration"


class Canary:
    """The probes and what they share across rounds (unsettled payments, each probe's state)."""

    def __init__(self, settings: CanarySettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http
        self.payments = PaymentProbe(settings)
        self.probes: tuple[Probe, ...] = probes(settings, self.payments)
        self.watch = Watch()
        meter = metrics.get_meter("mvno.canary")
        self._count = meter.create_counter(
            PROBES_METRIC, unit="{probe}", description="Canary probes run, by probe and outcome"
        )
        self._duration = meter.create_histogram(
            DURATION_METRIC, unit="s", description="How long each canary probe took"
        )

    async def round(self) -> list[ProbeResult]:
        """Every probe once, concurrently, each result measured."""
        results = await asyncio.gather(
            *(run_probe(probe, self.http, self.settings) for probe in self.probes)
        )
        for result in results:
            attributes = {"probe": result.probe, "outcome": result.outcome.value}
            self._count.add(1, attributes)
            self._duration.record(result.latency_seconds, attributes)
            if not result.ok:
                _log.info("canary %s failed: %s", result.probe, result.reason)
        return list(results)

    async def tick(self, publisher: Publisher) -> list[ProbeResult]:
        """One round, and the turns it saw published."""
        results = await self.round()
        turns = [turn for r in results if (turn := self.watch.observe(r)) is not None]
        for turn in turns:
            result = turn.result
            _log.warning(
                "canary %s %s (%s)",
                result.probe,
                type(turn).__name__.lower(),
                result.reason or "ok",
            )
        await publisher.publish([to_event(turn) for turn in turns])
        return results

    async def run(self, publisher: Publisher, stop: asyncio.Event) -> None:
        """A round every interval until ``stop``."""
        interval = self.settings.canary_interval_seconds
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            await self.tick(publisher)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, interval - (loop.time() - started)))


def http_client(settings: CanarySettings) -> httpx.AsyncClient:
    # No retries and no circuit breaker: the canary must see each failure the services would.
    # No kept-alive connections either: a server closing an idle one just as the next round
    # reuses it is a failure of the canary's own making, not the partner's.
    return httpx.AsyncClient(
        timeout=settings.canary_timeout_seconds,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def run_once(settings: CanarySettings) -> list[ProbeResult]:
    async with http_client(settings) as http:
        return await Canary(settings, http).round()


async def run_continuously(settings: CanarySettings, stop: asyncio.Event) -> None:
    async def topic_arn() -> str:
        found = await resolve(
            settings, platform_topology(settings.bus_prefix), producers=[PRODUCER], consumers=[]
        )
        return found.topic_arns[PRODUCER]

    async with http_client(settings) as http, aws_client(settings, "sns") as sns:
        _log.info("canary probing every %.0f s", settings.canary_interval_seconds)
        await Canary(settings, http).run(Publisher(sns, topic_arn), stop)
