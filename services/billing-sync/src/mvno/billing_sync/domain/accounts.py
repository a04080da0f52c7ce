"""Billing accounts: what each subscription event asks of the billing platform, retry timing, and
reconciliation's comparison of the platform's lines with the billing platform's. No I/O."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

Operation = Literal["create", "change_tariff", "suspend", "resume", "terminate"]

OPERATION_OF_EVENT: dict[str, Operation] = {
    "orders.subscription.activated.v1": "create",
    "orders.subscription.tariff_changed.v1": "change_tariff",
    "orders.subscription.suspended.v1": "suspend",
    "orders.subscription.resumed.v1": "resume",
    "orders.subscription.terminated.v1": "terminate",
}

STATUS_AFTER: dict[Operation, str] = {
    "create": "active",
    "change_tariff": "active",
    "suspend": "suspended",
    "resume": "active",
    "terminate": "terminated",
}

_NOT_ALLOWED = re.compile(r"[^A-Z0-9_-]")


def tariff_code(offering_id: str) -> str:
    """The billing platform's tariff code for an offering: upper case, 2 to 32 characters."""
    code = _NOT_ALLOWED.sub("_", offering_id.upper())[:32]
    if not code[0].isalnum():
        code = "T" + code[1:]
    return code if len(code) >= 2 else code + "_"


def cents(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def idempotency_key(operation_id: int, step: str) -> str:
    """Deterministic per operation and step: a retry after a lost answer repeats nothing."""
    return f"billing-sync:op:{operation_id}:{step}"


def retry_delay(attempt: int, *, base: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter after the ``attempt``-th failure (1-based)."""
    ceiling = min(maximum, base * 2 ** (attempt - 1))
    return rng.uniform(ceiling / 2, ceiling)


# --- reconciliation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalLine:
    subscription_id: str
    customer_id: str
    msisdn: str
    offering_id: str
    status: str  # active | suspended | terminated


@dataclass(frozen=True)
class BilledLine:
    billing_subscription_id: str
    billing_account_id: str
    external_ref: str | None
    msisdn: str
    tariff_code: str
    status: str  # the billing platform's: active | ended


Drift = Literal["missing", "extra", "wrong_tariff"]


@dataclass(frozen=True)
class Finding:
    drift: Drift
    subscription_id: str | None
    billing_subscription_id: str | None
    detail: str


def compare(local: list[LocalLine], billed: list[BilledLine]) -> list[Finding]:
    """Every difference between the lines the network runs and the lines the billing platform bills.

    * missing: a live (active or suspended) line with no active billed subscription;
    * extra: an active billed subscription whose line is terminated or unknown to the platform;
    * wrong_tariff: a live line billed at another tariff than its offering's.
    """
    active_billed: dict[str, BilledLine] = {}
    findings: list[Finding] = []
    by_id = {live.subscription_id: live for live in local}
    for bill in billed:
        if bill.status != "active":
            continue
        owner = by_id.get(bill.external_ref or "")
        if owner is None or owner.status == "terminated":
            why = "its line was terminated" if owner else "no such line on the platform"
            findings.append(Finding("extra", bill.external_ref, bill.billing_subscription_id, why))
            continue
        active_billed[owner.subscription_id] = bill
    for live in local:
        if live.status == "terminated":
            continue
        current = active_billed.get(live.subscription_id)
        if current is None:
            findings.append(Finding("missing", live.subscription_id, None, "live line not billed"))
        elif current.tariff_code != tariff_code(live.offering_id):
            findings.append(
                Finding(
                    "wrong_tariff",
                    live.subscription_id,
                    current.billing_subscription_id,
                    f"billed at {current.tariff_code}, expected {tariff_code(live.offering_id)}",
                )
            )
    return findings
