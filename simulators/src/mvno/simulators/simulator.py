"""The simulators' state and its life: built from the seed, reset, saved and loaded.

Everything the partners remember lives in one :class:`PartnerState`, rebuilt from the seed on
reset (so a test starts from a known pool of numbers and SIMs) and, when a state file is
configured, written at shutdown and read at start, so the local platform's services and the
simulators agree after a restart.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from mvno.simulators.billing.platform import BillingPlatform
from mvno.simulators.clock import Clock
from mvno.simulators.faults import FaultTable
from mvno.simulators.idempotency import IdempotencyStore
from mvno.simulators.ids import stream
from mvno.simulators.mno.activations import ActivationRunner, CallbackDelivery
from mvno.simulators.mno.operator import ActivationConfig, NetworkOperator, OperatorConfig
from mvno.simulators.mno.ports import PortInConfig
from mvno.simulators.mno.schemas import SubscriptionRead
from mvno.simulators.mno.subscriptions import Subscription, SubscriptionStatus
from mvno.simulators.payments.bank import Bank, BankConfig
from mvno.simulators.settings import SimulatorSettings

_log = logging.getLogger(__name__)

# Bumped whenever PartnerState changes shape: an older state file is then set aside, not loaded.
STATE_FORMAT = 2


@dataclass
class PartnerState:
    seed: int
    clock: Clock
    operator: NetworkOperator
    bank: Bank
    billing: BillingPlatform
    idempotency: IdempotencyStore
    callbacks: list[CallbackDelivery] = field(default_factory=list)
    format: int = STATE_FORMAT


def new_state(settings: SimulatorSettings, seed: int) -> PartnerState:
    clock = Clock()
    interval = settings.usage_interval_seconds
    return PartnerState(
        seed=seed,
        clock=clock,
        operator=NetworkOperator(
            stream(seed, "mno"),
            clock,
            OperatorConfig(
                number_pool_size=settings.number_pool_size,
                physical_sim_stock=settings.physical_sim_stock,
                smdp_host=settings.smdp_host,
                usage_interval=timedelta(seconds=interval) if interval else None,
            ),
            ActivationConfig(
                delay_seconds=settings.activation_delay_seconds,
                failure_rate=settings.activation_failure_rate,
            ),
            PortInConfig(delay_seconds=settings.port_in_delay_seconds),
        ),
        bank=Bank(
            stream(seed, "payments"),
            clock,
            BankConfig(
                opening_balance_cents=settings.opening_balance_cents,
                insufficient_funds_accounts=frozenset(settings.insufficient_funds_accounts),
                blocked_accounts=frozenset(settings.blocked_accounts),
            ),
        ),
        billing=BillingPlatform(stream(seed, "billing"), clock),
        idempotency=IdempotencyStore(timedelta(seconds=settings.idempotency_ttl_seconds)),
    )


def render_subscription(subscription: Subscription) -> dict[str, object]:
    return SubscriptionRead.model_validate(subscription).model_dump(mode="json", by_alias=True)


class Simulator:
    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.state = self._load() or new_state(settings, settings.seed)
        self.faults = FaultTable(
            stream(self.state.seed, "faults"),
            {},
            default_timeout_seconds=settings.fault_timeout_seconds,
        )
        self.activations = ActivationRunner(
            attempts=settings.callback_attempts,
            timeout_seconds=settings.callback_timeout_seconds,
            render=render_subscription,
        )

    def use_operations(self, operations: Mapping[str, frozenset[str]]) -> None:
        """Learn the partners' operations (from the app's routes) and apply the start-up faults."""
        self.faults.operations = operations
        self._apply_configured_faults()

    def _apply_configured_faults(self) -> None:
        self.faults.clear()
        for key, rule in self.settings.faults.items():
            partner, _, operation = key.partition(".")
            self.faults.set(partner, operation or None, rule)

    def reset(self, seed: int | None) -> None:
        """Back to the start: a fresh state from ``seed`` (the configured one when None) and the
        configured faults; pending activations are dropped."""
        self.activations.cancel_all()
        self.state = new_state(self.settings, self.settings.seed if seed is None else seed)
        self.faults.rng = stream(self.state.seed, "faults")
        self._apply_configured_faults()

    def schedule_activation(self, subscription_id: str) -> None:
        self.activations.schedule(self.state.operator, subscription_id, self.state.callbacks)

    async def start(self) -> None:
        await self.activations.open()
        for subscription in self.state.operator.subscriptions.values():
            if subscription.status is SubscriptionStatus.PENDING:
                self.schedule_activation(subscription.id)

    async def stop(self) -> None:
        await self.activations.close()
        self._save()

    def _load(self) -> PartnerState | None:
        path = self.settings.state_file
        if path is None or not path.exists():
            return None
        try:
            # The file is this simulator's own, written by _save into its data folder.
            state = pickle.loads(path.read_bytes())  # noqa: S301
        except Exception:
            _log.exception("could not read the state file %s; starting afresh", path)
            state = None
        if not isinstance(state, PartnerState) or state.format != STATE_FORMAT:
            _set_aside(path)
            return None
        _log.info("state read from %s", path)
        return state

    def _save(self) -> None:
        path = self.settings.state_file
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".partial")
        partial.write_bytes(pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(partial, path)
        _log.info("state saved to %s", path)


def _set_aside(path: Path) -> None:
    aside = path.with_suffix(path.suffix + ".unreadable")
    os.replace(path, aside)
    _log.warning("the state file %s is not this version's; moved to %s", path, aside)
