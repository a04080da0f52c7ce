"""What the customer's screens show, and how a customer's request becomes an order. No I/O here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

FINAL_ORDER_STATES = frozenset({"completed", "failed", "cancelled"})
"""An order in one of these states changes no more: live progress ends there."""

SUBSCRIPTION_STATUS_BY_EVENT: Mapping[str, str] = {
    "orders.subscription.activated.v1": "active",
    "orders.subscription.suspended.v1": "suspended",
    "orders.subscription.resumed.v1": "active",
    "orders.subscription.terminated.v1": "terminated",
    "orders.subscription.tariff_changed.v1": "active",
}
"""The status a line has after each lifecycle event of orders."""

PurchaseKind = Literal["line", "bundle", "airtime"]
SimKind = Literal["eSIM", "pSIM"]


class PortalError(Exception):
    """A customer's request the portal refuses; ``message`` is fit to show them."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class NotFound(PortalError):
    """No such object, or not the caller's: the same answer for both, so nothing leaks."""


class NotAllowed(PortalError):
    """The object is the caller's, but its state refuses this request."""


@dataclass(frozen=True)
class RicaDetails:
    """Who a new line is registered to (RICA). Personal data: passed on to orders, never kept."""

    id_type: Literal["sa_id", "passport"]
    id_number: str
    full_name: str
    address_line1: str
    city: str
    postal_code: str
    passport_country: str | None = None


@dataclass(frozen=True)
class Purchase:
    """A customer's request to buy something: a new line, a bundle or airtime for a line."""

    kind: PurchaseKind
    offering_id: str
    subscription_id: str | None = None
    sim_kind: SimKind | None = None
    rica: RicaDetails | None = None
    bank_account: str | None = None


@dataclass(frozen=True)
class Line:
    """A customer's subscription as the read model has it."""

    subscription_id: str
    customer_id: str
    status: str
    payment_type: str | None


def check_purchase(purchase: Purchase, line: Line | None) -> None:
    """Refuse what the customer cannot buy, before orders is asked.

    ``line`` is the caller's own line named by the purchase (``None`` when they have no such line,
    or it is another customer's).
    """
    if purchase.kind == "line":
        if purchase.subscription_id is not None:
            raise PortalError("a new line is not bought for an existing line")
        if purchase.sim_kind is None:
            raise PortalError("a new line needs a SIM kind: eSIM or pSIM")
        if purchase.rica is None:
            raise PortalError("a new line needs the details it is registered (RICA) to")
        return
    if purchase.subscription_id is None:
        raise PortalError(f"a {purchase.kind} is bought for one of your lines: name it")
    if line is None:
        raise NotFound(f"you have no line {purchase.subscription_id}")
    if line.status != "active":
        raise NotAllowed(f"the line is {line.status}: nothing can be bought for it")
    if purchase.kind == "airtime" and line.payment_type not in (None, "prepaid"):
        raise NotAllowed("airtime is for prepaid lines")


def check_suspension(line: Line | None, subscription_id: str) -> None:
    if line is None:
        raise NotFound(f"you have no line {subscription_id}")
    if line.status != "active":
        raise NotAllowed(f"the line is {line.status}; only an active line can be suspended")


def order_request(purchase: Purchase, *, customer_id: str, channel: str) -> dict[str, Any]:
    """The TMF622 productOrder that buys ``purchase`` for ``customer_id`` on ``channel``."""
    item: dict[str, Any] = {"id": "1", "productOffering": {"id": purchase.offering_id}}
    if purchase.kind == "line":
        item |= {"action": "add", "simKind": purchase.sim_kind}
    else:
        item |= {
            "action": "modify",
            "change": purchase.kind,
            "product": {"id": purchase.subscription_id},
        }
    body: dict[str, Any] = {
        "channel": [{"id": channel}],
        "relatedParty": [{"id": customer_id, "role": "Customer"}],
        "productOrderItem": [item],
    }
    if purchase.rica is not None:
        rica = purchase.rica
        customer: dict[str, Any] = {
            "idType": rica.id_type,
            "idNumber": rica.id_number,
            "fullName": rica.full_name,
            "address": {
                "line1": rica.address_line1,
                "city": rica.city,
                "postalCode": rica.postal_code,
            },
        }
        if rica.passport_country:
            customer["passportCountry"] = rica.passport_country
        body["customer"] = customer
    if purchase.bank_account is not None:
        body["payment"] = [{"id": purchase.bank_account, "@referredType": "BankAccount"}]
    return body


def suspension_request(subscription_id: str, *, customer_id: str, channel: str) -> dict[str, Any]:
    """The TMF622 productOrder that suspends (bars) a lost or stolen line."""
    return {
        "channel": [{"id": channel}],
        "relatedParty": [{"id": customer_id, "role": "Customer"}],
        "productOrderItem": [
            {
                "id": "1",
                "action": "modify",
                "change": "suspend",
                "product": {"id": subscription_id},
            }
        ],
    }


def order_items_from_answer(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """orders' TMF622 answer's items in the read model's shape (the same as the events')."""
    items = []
    for item in answer.get("productOrderItem") or []:
        items.append(
            {
                "item_id": str(item.get("id")),
                "action": item.get("action"),
                "change": item.get("change"),
                "offering_id": (item.get("productOffering") or {}).get("id"),
                "offering_name": (item.get("productOffering") or {}).get("name"),
                "subscription_id": (item.get("product") or {}).get("id"),
                "sim_kind": item.get("simKind"),
                "state": item.get("state"),
            }
        )
    return items


def order_title(items: Sequence[Mapping[str, Any]]) -> str:
    """A short name for an order on the customer's screen."""
    if not items:
        return "Order"
    item = items[0]
    action, change = item.get("action"), item.get("change")
    if action == "add":
        kind = item.get("sim_kind")
        return f"New {kind} line" if kind else "New line"
    if action == "delete":
        return "Cancel line"
    return {
        "bundle": "Bundle",
        "airtime": "Airtime top-up",
        "suspend": "Suspend line",
        "resume": "Resume line",
        "tariff": "Change of plan",
        "sim_swap": "SIM swap",
    }.get(str(change), "Change to a line")


def merge_items(
    known: Sequence[Mapping[str, Any]], update: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """An event's item progress laid over what is known (an event carries no names or changes)."""
    by_id = {str(item["item_id"]): dict(item) for item in known}
    for item in update:
        merged = by_id.setdefault(str(item["item_id"]), {})
        merged.update({k: v for k, v in item.items() if v is not None})
    return list(by_id.values())


# --- balances ---------------------------------------------------------------------------------


def needs_refresh(
    *, fetched_at: datetime | None, invalidated_at: datetime | None, now: datetime, fresh_for: float
) -> bool:
    """Whether a copy of a balance must be asked for again before it is shown as current."""
    if fetched_at is None:
        return True
    if invalidated_at is not None and invalidated_at >= fetched_at:
        return True
    return now - fetched_at >= timedelta(seconds=fresh_for)


@dataclass(frozen=True)
class Allowance:
    name: str
    usage_type: str
    remaining: float
    initial: float
    units: str
    expires_at: str | None
    status: str


@dataclass(frozen=True)
class BalanceSummary:
    """A line's airtime and what its active bundles still give, summed per kind."""

    airtime: float | None
    data_mb: float
    voice_minutes: float
    sms: float
    allowances: tuple[Allowance, ...] = field(default_factory=tuple)


def summarise_balances(buckets: Iterable[Mapping[str, Any]]) -> BalanceSummary:
    """Sum TMF654 buckets (billing-sync's answer) into what the line's screen shows."""
    airtime: float | None = None
    totals = {"data": 0.0, "voice": 0.0, "sms": 0.0}
    allowances = []
    for bucket in buckets:
        usage_type = str(bucket.get("usageType"))
        remaining = float((bucket.get("remainingValue") or {}).get("amount") or 0)
        status = str(bucket.get("status") or "active")
        if usage_type == "airtime":
            airtime = (airtime or 0.0) + remaining
            continue
        if status == "active" and usage_type in totals:
            totals[usage_type] += remaining
        allowances.append(
            Allowance(
                name=str(bucket.get("name") or usage_type),
                usage_type=usage_type,
                remaining=remaining,
                initial=float((bucket.get("initialValue") or {}).get("amount") or 0),
                units=str((bucket.get("remainingValue") or {}).get("units") or ""),
                expires_at=(bucket.get("validFor") or {}).get("endDateTime"),
                status=status,
            )
        )
    return BalanceSummary(
        airtime=airtime,
        data_mb=totals["data"],
        voice_minutes=totals["voice"],
        sms=totals["sms"],
        allowances=tuple(allowances),
    )


# --- partners, as the canary sees them ------------------------------------------------------------

PARTNER_NOTICES: dict[str, tuple[str, str]] = {
    "network-operator": (
        "Our network partner",
        "new lines, SIM and eSIM activations may take longer than usual",
    ),
    "payments": ("The bank's payment service", "payments may take longer than usual"),
    "billing-platform": (
        "Our billing partner",
        "new bundles and airtime may take longer to show on your balance",
    ),
}
"""What customers are told while the canary finds a partner failing: who, and what it delays.
The portal's own journey is not announced on the portal (a customer reading it is proof enough)."""


@dataclass(frozen=True)
class PartnerNotice:
    partner: str
    status: Literal["slow", "unavailable"]
    message: str
    since: datetime


def partner_notices(failing: Iterable[Mapping[str, Any]]) -> list[PartnerNotice]:
    """One notice per partner with failing probes: ``slow`` when every one of them answered but
    too slowly, else ``unavailable``; ``since`` the earliest failure."""
    by_partner: dict[str, list[Mapping[str, Any]]] = {}
    for probe in failing:
        if probe["target"] in PARTNER_NOTICES:
            by_partner.setdefault(probe["target"], []).append(probe)
    notices = []
    for partner, probes in by_partner.items():
        who, delayed = PARTNER_NOTICES[partner]
        slow = all(p["slow"] for p in probes)
        state = "is slow" if slow else "is not answering"
        notices.append(
            PartnerNotice(
                partner=partner,
                status="slow" if slow else "unavailable",
                message=f"{who} {state} at the moment: {delayed}.",
                since=min(p["changed_at"] for p in probes),
            )
        )
    return sorted(notices, key=lambda n: n.partner)
