"""The customer's screens, composed from the read model and the upstreams' answers.

Every read is the caller's own: a query is always scoped by the customer id of the token, so
another customer's line or order is simply not found (the same 404 as one that does not exist).
A screen answers with what it has: when an upstream is slow or down it shows the last copy it
kept, marked stale, or says the part is unavailable; never a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import segno

from mvno.common.db import UnitOfWork
from mvno.portal_api.domain.model import (
    FINAL_ORDER_STATES,
    BalanceSummary,
    NotFound,
    needs_refresh,
    order_title,
    summarise_balances,
)
from mvno.portal_api.integration import Upstreams, UpstreamUnavailable
from mvno.portal_api.live import Announcements
from mvno.portal_api.repository import PortalRepository, ReadModelQueries
from mvno.portal_api.schemas import (
    AllowanceRead,
    BalanceRead,
    EsimRead,
    Freshness,
    LineRead,
    LinesRead,
    MoneyRead,
    OfferRead,
    OffersRead,
    OrderItemRead,
    OrdersRead,
    OrderView,
    UsageDayRead,
    UsageRead,
)
from mvno.portal_api.settings import PortalApiSettings

_log = logging.getLogger(__name__)


@dataclass
class Context:
    settings: PortalApiSettings
    unit_of_work: Callable[[], UnitOfWork]
    upstreams: Upstreams
    announcements: Announcements
    queries: ReadModelQueries | None = None
    """Opened with the app (a pool); the hottest screen reads through it."""
    refreshing: dict[str, asyncio.Future[list[dict[str, Any]]]] = field(default_factory=dict)
    """Lines whose balances are being asked for right now, so that requests share one call."""
    last_offers: list[dict[str, Any]] | None = None


# --- lines -------------------------------------------------------------------------------------


async def lines(context: Context, *, customer_id: str) -> LinesRead:
    if context.queries is None:
        raise RuntimeError("the read model's pool is not open")
    rows = await context.queries.lines_of(customer_id=customer_id)
    views, missing = await _with_balances(context, rows)
    return LinesRead(lines=views, degraded=bool(missing), missing=missing)


async def line(context: Context, *, customer_id: str, line_id: str) -> LineRead:
    async with context.unit_of_work() as uow:
        row = await PortalRepository(uow.session).line(
            customer_id=customer_id, subscription_id=line_id
        )
    if row is None:
        raise NotFound(f"you have no line {line_id}")
    views, _ = await _with_balances(context, [row])
    return views[0]


async def _with_balances(
    context: Context, rows: Sequence[Mapping[str, Any]]
) -> tuple[list[LineRead], list[str]]:
    now = datetime.now(UTC)
    fresh_for = context.settings.balance_fresh_seconds
    resting = context.upstreams.resting("billing-sync")
    due = [
        row
        for row in rows
        if row["status"] != "terminated"
        and needs_refresh(
            fetched_at=row["fetched_at"],
            invalidated_at=row["invalidated_at"],
            now=now,
            fresh_for=fresh_for,
        )
    ]
    fetched: dict[str, list[dict[str, Any]]] = {}
    if due and not resting:
        answers = await asyncio.gather(
            *(_buckets_once(context, row["subscription_id"], now) for row in due),
            return_exceptions=True,
        )
        for row, answer in zip(due, answers, strict=True):
            if isinstance(answer, UpstreamUnavailable):
                continue  # logged once by the upstream client; the copy is shown, marked
            if isinstance(answer, BaseException):
                raise answer
            fetched[row["subscription_id"]] = answer
    views = []
    stale = False
    for row in rows:
        subscription_id = row["subscription_id"]
        if subscription_id in fetched:
            balance = _balance("current", now, summarise_balances(fetched[subscription_id]))
        elif row["buckets"] is not None:
            current = row not in due
            stale = stale or not current
            balance = _balance(
                "current" if current else "stale",
                row["fetched_at"],
                summarise_balances(row["buckets"]),
            )
        elif row["status"] == "terminated":
            balance = BalanceRead(status="current", as_of=now)
        else:
            stale = True
            balance = BalanceRead(status="unavailable")
        views.append(
            LineRead(
                id=subscription_id,
                msisdn=row["msisdn"],
                status=row["status"],
                sim_kind=row["sim_kind"],
                payment_type=row["payment_type"],
                offering_id=row["offering_id"],
                activated_at=row["activated_at"],
                balance=balance,
            )
        )
    return views, (["balances"] if stale else [])


async def _buckets_once(
    context: Context, subscription_id: str, now: datetime
) -> list[dict[str, Any]]:
    """A line's buckets from billing-sync, asked once however many requests want them now."""
    running = context.refreshing.get(subscription_id)
    if running is None:
        running = asyncio.ensure_future(_fetch_and_keep(context, subscription_id, now))
        context.refreshing[subscription_id] = running
        running.add_done_callback(lambda _: context.refreshing.pop(subscription_id, None))
    return await asyncio.shield(running)


async def _fetch_and_keep(
    context: Context, subscription_id: str, now: datetime
) -> list[dict[str, Any]]:
    buckets = await context.upstreams.buckets(subscription_id)
    try:
        async with context.unit_of_work() as uow:
            await PortalRepository(uow.session).put_balance_copy(
                subscription_id=subscription_id, buckets=buckets, fetched_at=now
            )
            await uow.commit()
    except Exception:
        # The copy is for later screens; this one shows what billing-sync just said.
        _log.warning("could not keep a copy of a line's balances", exc_info=True)
    return buckets


def _balance(status: Freshness, as_of: datetime | None, summary: BalanceSummary) -> BalanceRead:
    return BalanceRead(
        status=status,
        as_of=as_of,
        airtime=MoneyRead(amount=summary.airtime) if summary.airtime is not None else None,
        data_mb=summary.data_mb,
        voice_minutes=summary.voice_minutes,
        sms=summary.sms,
        allowances=[
            AllowanceRead(
                name=a.name,
                usage_type=a.usage_type,
                remaining=a.remaining,
                initial=a.initial,
                units=a.units,
                expires_at=a.expires_at,
                status=a.status,
            )
            for a in summary.allowances
        ],
    )


async def usage(
    context: Context, *, customer_id: str, line_id: str, date_from: date, date_to: date
) -> UsageRead:
    async with context.unit_of_work() as uow:
        row = await PortalRepository(uow.session).line(
            customer_id=customer_id, subscription_id=line_id
        )
    if row is None:
        raise NotFound(f"you have no line {line_id}")
    now = datetime.now(UTC)
    status: Freshness = "current"
    as_of: datetime | None = now
    try:
        days = await context.upstreams.usage(line_id, date_from, date_to)
    except UpstreamUnavailable as error:
        _log.info("usage of a line unavailable: %s", error)
        async with context.unit_of_work() as uow:
            copy = await PortalRepository(uow.session).usage_copy(
                subscription_id=line_id, date_from=date_from, date_to=date_to
            )
        if copy is None:
            days, status, as_of = [], "unavailable", None
        else:
            (days, as_of), status = copy, "stale"
    else:
        async with context.unit_of_work() as uow:
            await PortalRepository(uow.session).put_usage_copy(
                subscription_id=line_id,
                date_from=date_from,
                date_to=date_to,
                days=days,
                fetched_at=now,
            )
            await uow.commit()
    return UsageRead(
        line_id=line_id,
        date_from=date_from,
        date_to=date_to,
        status=status,
        as_of=as_of,
        days=[_usage_day(day) for day in days if _usage_day_ok(day)],
    )


def _usage_day_ok(day: Mapping[str, Any]) -> bool:
    try:
        date.fromisoformat(str(day.get("usageDate")))
    except ValueError:
        return False
    return True


def _usage_day(day: Mapping[str, Any]) -> UsageDayRead:
    values = {c.get("name"): c.get("value") for c in day.get("usageCharacteristic") or []}
    rated = day.get("ratedProductUsage") or []
    charge = sum(float((r.get("taxIncludedRatingAmount") or {}).get("value") or 0) for r in rated)
    return UsageDayRead(
        date=date.fromisoformat(str(day["usageDate"])),
        data_mb=round(int(values.get("dataBytes") or 0) / 1_048_576, 2),
        voice_minutes=round(int(values.get("voiceSeconds") or 0) / 60, 1),
        sms=int(values.get("smsCount") or 0),
        charge=MoneyRead(amount=round(charge, 2)),
    )


async def esim(context: Context, *, customer_id: str, line_id: str) -> EsimRead:
    async with context.unit_of_work() as uow:
        row = await PortalRepository(uow.session).line(
            customer_id=customer_id, subscription_id=line_id
        )
    if row is None:
        raise NotFound(f"you have no line {line_id}")
    if row["sim_kind"] not in (None, "eSIM"):
        raise NotFound("this line has a SIM card, not an eSIM")
    code = await context.upstreams.esim_activation_code(line_id)
    if code is None:
        raise NotFound("this line has no eSIM activation code")
    return EsimRead(line_id=line_id, activation_code=code, qr_code=qr_data_uri(code))


def qr_data_uri(text: str) -> str:
    """``text`` as a QR code (error correction M, quiet zone kept), an SVG in a data: URI."""
    return segno.make_qr(text, error="m").svg_data_uri(scale=4, dark="#000", light="#fff")


# --- orders ------------------------------------------------------------------------------------


def order_view(row: Mapping[str, Any]) -> OrderView:
    items = list(row["items"] or [])
    return OrderView(
        id=row["order_id"],
        title=order_title(items),
        state=row["state"],
        done=row["state"] in FINAL_ORDER_STATES,
        placed_at=row["placed_at"],
        updated_at=row["updated_at"],
        items=[
            OrderItemRead(
                id=str(item.get("item_id")),
                action=item.get("action"),
                change=item.get("change"),
                offering_id=item.get("offering_id"),
                offering_name=item.get("offering_name"),
                line_id=item.get("subscription_id"),
                sim_kind=item.get("sim_kind"),
                state=item.get("state"),
            )
            for item in items
        ],
        failure_reason=row["failure_reason"],
    )


async def orders(context: Context, *, customer_id: str, offset: int, limit: int) -> OrdersRead:
    async with context.unit_of_work() as uow:
        rows, total = await PortalRepository(uow.session).orders_of(
            customer_id=customer_id, offset=offset, limit=limit
        )
    if total is None and offset > 0:
        async with context.unit_of_work() as uow:
            _, total = await PortalRepository(uow.session).orders_of(
                customer_id=customer_id, offset=0, limit=1
            )
    return OrdersRead(orders=[order_view(row) for row in rows], total=total or 0)


async def order(context: Context, *, customer_id: str, order_id: str) -> OrderView:
    async with context.unit_of_work() as uow:
        row = await PortalRepository(uow.session).order(customer_id=customer_id, order_id=order_id)
    if row is None:
        raise NotFound(f"you have no order {order_id}")
    return order_view(row)


# --- offers ------------------------------------------------------------------------------------


async def offers(context: Context) -> OffersRead:
    status: Freshness = "current"
    try:
        found = await context.upstreams.offers()
        context.last_offers = found
    except UpstreamUnavailable as error:
        _log.info("offers unavailable: %s", error)
        found = context.last_offers or []
        status = "stale" if context.last_offers is not None else "unavailable"
    return OffersRead(offers=[OfferRead.model_validate(offer) for offer in found], status=status)
