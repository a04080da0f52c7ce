"""The canary's turns translated into the bus contracts and published to its topic.

The canary keeps no database, so it has no outbox: it publishes straight to SNS, and an event
SNS did not take is kept and published again on the next round, before newer ones, so consumers
see each probe's turns in order.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mvno.canary.domain.model import Failed, Turn
from mvno.common.bus.envelope import OutgoingEvent, event_source, new_event
from mvno.common.events.platform import CanaryFailed, CanaryRecovered

_log = logging.getLogger(__name__)

PRODUCER = "platform"


def to_event(turn: Turn) -> OutgoingEvent:
    result = turn.result
    common: dict[str, Any] = {
        "probe": result.probe,
        "target": result.target,
        "latency_seconds": round(result.latency_seconds, 3),
    }
    data: CanaryFailed | CanaryRecovered
    if isinstance(turn, Failed):
        data = CanaryFailed(**common, reason=result.reason[:500], slow=result.slow)
    else:
        data = CanaryRecovered(**common)
    return new_event(data, source=event_source("canary"))


class Publisher:
    """Publishes events to the canary's topic, keeping those SNS did not take for later.

    ``topic_arn`` may be a coroutine function that finds the topic: it is asked again on each
    publish until it answers, so the probes run (and are measured) while the bus is unreachable.
    """

    def __init__(self, sns: Any, topic_arn: str | Callable[[], Awaitable[str]]) -> None:
        self._sns = sns
        self._topic_arn = topic_arn
        self.pending: list[OutgoingEvent] = []

    async def _topic(self) -> str:
        if not isinstance(self._topic_arn, str):
            self._topic_arn = await self._topic_arn()
        return self._topic_arn

    async def publish(self, events: list[OutgoingEvent]) -> None:
        self.pending.extend(events)
        while self.pending:
            event = self.pending[0]
            try:
                await self._sns.publish(
                    TopicArn=await self._topic(),
                    Message=event.body,
                    MessageAttributes={
                        name: {"DataType": "String", "StringValue": value}
                        for name, value in event.attributes.items()
                    },
                )
            except Exception as error:  # the bus is down: keep it for the next round
                _log.warning("could not publish %s (%s); retrying next round", event.type, error)
                return
            self.pending.pop(0)
            _log.info("published %s", event.type)
