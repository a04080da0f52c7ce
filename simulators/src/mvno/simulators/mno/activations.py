"""Asynchronous activation: complete a pending activation after a delay and call the client back.

Real network operators accept an activation, finish it minutes later and POST the outcome to a
callback URL the client gave. Each delivery is retried a few times with a growing pause and
recorded, so a test or a demo can see what was sent and whether it arrived.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx

from mvno.simulators.mno.operator import NetworkOperator
from mvno.simulators.mno.subscriptions import Subscription, SubscriptionStatus

_log = logging.getLogger(__name__)

FIRST_RETRY_PAUSE_SECONDS = 0.5


@dataclass(frozen=True)
class CallbackDelivery:
    subscription_id: str
    url: str
    event_type: str
    delivered: bool
    attempts: int
    status_code: int | None
    error: str | None
    at: datetime


Render = Callable[[Subscription], dict[str, object]]


class ActivationRunner:
    def __init__(self, *, attempts: int, timeout_seconds: float, render: Render) -> None:
        self.attempts = attempts
        self.timeout_seconds = timeout_seconds
        self.render = render
        self.tasks: set[asyncio.Task[None]] = set()
        self.client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        self.client = httpx.AsyncClient(timeout=self.timeout_seconds)

    async def close(self) -> None:
        self.cancel_all()
        if self.tasks:
            await asyncio.wait(self.tasks)
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    def cancel_all(self) -> None:
        for task in self.tasks:
            task.cancel()

    def schedule(
        self,
        operator: NetworkOperator,
        subscription_id: str,
        deliveries: list[CallbackDelivery],
    ) -> None:
        """Complete the activation after the operator's delay; ``deliveries`` records callbacks.

        The task holds the operator it was scheduled on, so after a reset it cannot touch the
        new state (and a reset cancels it anyway).
        """
        task = asyncio.create_task(self._complete(operator, subscription_id, deliveries))
        self.tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("a pending activation failed", exc_info=task.exception())

    async def _complete(
        self,
        operator: NetworkOperator,
        subscription_id: str,
        deliveries: list[CallbackDelivery],
    ) -> None:
        await asyncio.sleep(operator.activation.delay_seconds)
        subscription = operator.complete_activation(subscription_id)
        if subscription.callback_url is None:
            return
        event_type = (
            "subscription.activated"
            if subscription.status is SubscriptionStatus.ACTIVE
            else "subscription.activation-failed"
        )
        body: dict[str, object] = {
            "eventType": event_type,
            "occurredAt": operator.clock.now().isoformat(),
            "subscription": self.render(subscription),
        }
        deliveries.append(
            await self._deliver(
                subscription.callback_url, body, subscription.id, event_type, operator
            )
        )

    async def _deliver(
        self,
        url: str,
        body: dict[str, object],
        subscription_id: str,
        event_type: str,
        operator: NetworkOperator,
    ) -> CallbackDelivery:
        assert self.client is not None, "the runner is not open"
        status_code: int | None = None
        error: str | None = None
        pause = FIRST_RETRY_PAUSE_SECONDS
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self.client.post(url, json=body)
                status_code, error = response.status_code, None
                if response.is_success:
                    return CallbackDelivery(
                        subscription_id,
                        url,
                        event_type,
                        True,
                        attempt,
                        status_code,
                        None,
                        operator.clock.now(),
                    )
            except httpx.HTTPError as exc:
                status_code, error = None, f"{type(exc).__name__}: {exc}"
            if attempt < self.attempts:
                await asyncio.sleep(pause)
                pause *= 2
        _log.warning("callback to %s for %s not delivered", url, subscription_id)
        return CallbackDelivery(
            subscription_id,
            url,
            event_type,
            False,
            self.attempts,
            status_code,
            error,
            operator.clock.now(),
        )
