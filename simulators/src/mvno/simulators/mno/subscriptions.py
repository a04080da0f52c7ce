"""A mobile subscription at the network operator and the moves its status allows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mvno.simulators.errors import Conflict
from mvno.simulators.mno.sims import SimKind


class SubscriptionStatus(StrEnum):
    PENDING = "pending"  # activation accepted; the network completes it later
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"
    FAILED = "failed"  # the network could not activate it


@dataclass
class Subscription:
    id: str
    msisdn: str
    iccid: str
    sim_kind: SimKind
    tariff_code: str
    status: SubscriptionStatus
    created_at: datetime
    reservation_id: str
    callback_url: str | None = None
    activated_at: datetime | None = None
    suspended_at: datetime | None = None
    terminated_at: datetime | None = None
    failure_reason: str | None = None
    suspension_reason: str | None = None
    usage_accrued_until: datetime | None = None  # usage has been generated up to here

    def require(self, *allowed: SubscriptionStatus, action: str) -> None:
        if self.status not in allowed:
            raise Conflict(
                "subscription-state",
                f"Cannot {action} a {self.status.value} subscription",
                subscriptionStatus=self.status.value,
            )

    def mark_active(self, now: datetime) -> None:
        self.require(SubscriptionStatus.PENDING, action="activate")
        self.status = SubscriptionStatus.ACTIVE
        self.activated_at = now
        self.usage_accrued_until = now

    def mark_failed(self, reason: str) -> None:
        self.require(SubscriptionStatus.PENDING, action="fail")
        self.status = SubscriptionStatus.FAILED
        self.failure_reason = reason

    def suspend(self, reason: str | None, now: datetime) -> None:
        self.require(SubscriptionStatus.ACTIVE, action="suspend")
        self.status = SubscriptionStatus.SUSPENDED
        self.suspended_at = now
        self.suspension_reason = reason

    def resume(self, now: datetime) -> None:
        self.require(SubscriptionStatus.SUSPENDED, action="resume")
        self.status = SubscriptionStatus.ACTIVE
        self.suspended_at = None
        self.suspension_reason = None
        self.usage_accrued_until = now  # no usage while suspended

    def terminate(self, now: datetime) -> None:
        self.require(SubscriptionStatus.ACTIVE, SubscriptionStatus.SUSPENDED, action="terminate")
        self.status = SubscriptionStatus.TERMINATED
        self.terminated_at = now

    def swap_to(self, iccid: str, kind: SimKind) -> None:
        """The caller has checked the status first: the new SIM is taken before this runs."""
        self.iccid = iccid
        self.sim_kind = kind
