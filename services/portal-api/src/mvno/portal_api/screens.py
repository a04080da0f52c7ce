"""The customer's screens, composed from the read model and the upstreams' answers.

Every read is the caller's own: a query is always scoped by the customer id of the token, so
another customer's line or order is simply not found (the same 404 as one that does not exist).
A screen answers with what it has: when an upstream is slow or down it shows the last copy it
kept, marked stale, or says the part is unavailable; never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import segno
from pydantic_core import to_json

from mvno.common.auth.tokens import TokenValidator
from mvno.portal_api.clients import Upstreams, UpstreamUnavailable
from mvno.portal_api.domain.model import (
    FINAL_ORDER_STATES,
    BalanceSummary,
    NotFound,
    PartnerNotice,
    needs_refresh,
    order_title,
    partner_notices,
    summarise_balances,
)
from mvno.portal_api.live import Announcements
from mvno.portal_api.protection import CustomerLimits
from mvno.portal_api.repository import PortalUnitOfWork, ReadModelQueries
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
    PartnerNoticeRead,
    UsageDayRead,
    UsageRead,
    wire_keys,
)
from mvno.portal_api.settings import PortalApiSettings

_log = logging.getLogger(__name__)

# "My lines" is rendered from plain dicts (no models built per view); their keys come from the
# response models, and tests hold the bytes to the models' own dump.
_LINES, _LINE, _BALANCE, _ALLOWANCE, _MONEY = (
    wire_keys(model) for model in (LinesRead, LineRead, BalanceRead, AllowanceRead, MoneyRead)
)


class LinesAnswers:
    """Each customer's rendered "my lines" answer, kept by this replica for the next views.

    An answer is kept only while the replica hears the read model's announcements (the consumer
    NOTIFYs every change to a customer's lines, balances or orders at commit, and each replica
    drops that customer's answer on hearing it), never past the freshness of the balances in it,
    and never when it is degraded (a stale or missing balance is asked for again on the next
    view). An answer read while a change was announced is not kept: it may be from before it.
    At most ``max_entries`` customers are held; the least recently viewed go first.

    Near the end of an answer's life (its last ``renew_seconds``) one view is sent to read it
    anew, balances included, while the others still get the kept answer: a customer who keeps
    looking never has all their views wait for billing-sync at once.
    """

    def __init__(
        self,
        *,
        max_entries: int,
        renew_seconds: float = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: OrderedDict[str, _KeptAnswer] = OrderedDict()
        self._max_entries = max_entries
        self._renew_seconds = renew_seconds
        self._clock = clock
        self._changes = 0
        self.trusted = False
        """Whether announcements are heard now; nothing is kept or answered while they are not."""

    @property
    def changes(self) -> int:
        """A mark taken before reading an answer, handed to :meth:`keep`."""
        return self._changes

    def get(self, customer_id: str) -> bytes | None:
        """The kept answer; ``None`` when there is none, or for the one view sent to renew it."""
        if not self.trusted:
            return None
        entry = self._entries.get(customer_id)
        if entry is None:
            return None
        now = self._clock()
        if now >= entry.good_until:
            del self._entries[customer_id]
            return None
        self._entries.move_to_end(customer_id)
        if now >= entry.good_until - self._renew_seconds and not entry.renewing:
            entry.renewing = True
            return None
        return entry.body

    def keep(self, customer_id: str, body: bytes, *, seconds: float, since: int) -> None:
        """Keep ``body`` for ``seconds`` unless anything changed since the mark ``since``."""
        if not self.trusted or since != self._changes or seconds <= 0 or self._max_entries <= 0:
            self.renewed(customer_id)
            return
        self._entries[customer_id] = _KeptAnswer(self._clock() + seconds, body)
        self._entries.move_to_end(customer_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def renewed(self, customer_id: str) -> None:
        """A renewal ended without a new answer kept: a later view may try again."""
        entry = self._entries.get(customer_id)
        if entry is not None:
            entry.renewing = False

    def changed(self, customer_id: str | None) -> None:
        """A customer's lines, balances or orders changed (``None``: anyone's may have)."""
        self._changes += 1
        if customer_id is None:
            self._entries.clear()
        else:
            self._entries.pop(customer_id, None)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class _KeptAnswer:
    good_until: float
    body: bytes
    renewing: bool = False


@dataclass
class Context:
    settings: PortalApiSettings
    unit_of_work: Callable[[], PortalUnitOfWork]
    upstreams: Upstreams
    announcements: Announcements
    answers: LinesAnswers
    limits: CustomerLimits
    queries: ReadModelQueries | None = None
    """Opened with the app (a pool); the hottest screen reads through it."""
    tokens: TokenValidator | None = None
    """The app's token validator, set at start-up: the tokens it verified lately."""
    refreshing: dict[str, asyncio.Future[list[dict[str, Any]]]] = field(default_factory=dict)
    """Lines whose balances are being asked for right now, so that requests share one call."""
    last_offers: list[dict[str, Any]] | None = None


# --- lines -------------------------------------------------------------------------------------


async def lines(context: Context, *, customer_id: str) -> bytes:
    """The customer's lines with their balances, rendered (``LinesRead``, by alias)."""
    answers = context.answers
    kept = answers.get(customer_id)
    if kept is not None:
        return kept
    since = answers.changes
    try:
        if context.queries is None:
            raise RuntimeError("the read model's pool is not open")
        rows = await context.queries.lines_of(customer_id=customer_id)
        # Balances that would age within the renewal period are asked for now, so the answer
        # kept lives long enough to be renewed before it ages.
        views, missing, good_until = await _with_balances(
            context, rows, ahead=renew_seconds(context.settings)
        )
        encoded = render_lines(views, missing)
    except BaseException:
        answers.renewed(customer_id)
        raise
    if missing:
        answers.renewed(customer_id)
    else:
        seconds = context.settings.balance_fresh_seconds
        if good_until is not None:
            seconds = min(seconds, (good_until - datetime.now(UTC)).total_seconds())
        answers.keep(customer_id, encoded, seconds=seconds, since=since)
    return encoded


def renew_seconds(settings: PortalApiSettings) -> float:
    """How long before its balances age a kept "my lines" answer is read anew."""
    return min(5.0, settings.balance_fresh_seconds / 5)


async def line(context: Context, *, customer_id: str, line_id: str) -> LineRead:
    async with context.unit_of_work() as uow:
        row = await uow.portal.line(customer_id=customer_id, subscription_id=line_id)
    if row is None:
        raise NotFound(f"you have no line {line_id}")
    views, _, _ = await _with_balances(context, [row])
    return LineRead.model_validate(views[0])


def render_lines(views: list[dict[str, Any]], missing: list[str]) -> bytes:
    """The "my lines" answer's JSON: ``LinesRead`` by alias, from views shaped as ``LineRead`` by
    alias (:func:`_with_balances`). Serialised by pydantic's own serialiser without building the
    models: the views are made here from the read model's rows, so validating them again would
    only repeat work on the hottest screen; tests hold it byte for byte to
    ``LinesRead.model_dump_json(by_alias=True)``."""
    return to_json({_LINES.lines: views, _LINES.degraded: bool(missing), _LINES.missing: missing})


async def _with_balances(
    context: Context, rows: Sequence[Mapping[str, Any]], *, ahead: float = 0
) -> tuple[list[dict[str, Any]], list[str], datetime | None]:
    """The lines with their balances (each shaped as ``LineRead`` by alias), what is missing,
    and until when every balance shown as current stays current (``None``: no balance in them
    ages).

    Copies that would age within ``ahead`` seconds are asked for again in the background and
    shown as they are (current): no view waits for billing-sync while its copy is still good, so
    only a missing, aged or invalidated copy holds a view (otherwise every view arriving during
    that one call would wait for it, once per freshness period).
    """
    now = datetime.now(UTC)
    fresh_for = context.settings.balance_fresh_seconds
    good_until: datetime | None = None
    resting = context.upstreams.resting("billing-sync")

    def due_at(row: Mapping[str, Any], moment: datetime) -> bool:
        return row["status"] != "terminated" and needs_refresh(
            fetched_at=row["fetched_at"],
            invalidated_at=row["invalidated_at"],
            now=moment,
            fresh_for=fresh_for,
        )

    # Kept by position: looking a row up in a list would compare whole rows, field by field.
    due = [due_at(row, now) for row in rows]
    asked = [row for row, is_due in zip(rows, due, strict=True) if is_due]
    if ahead > 0 and not resting:
        later = now + timedelta(seconds=ahead)
        for row, is_due in zip(rows, due, strict=True):
            if not is_due and due_at(row, later):
                _buckets_future(context, row["subscription_id"], now).add_done_callback(_retrieved)
    fetched: dict[str, list[dict[str, Any]]] = {}
    if asked and not resting:
        answers = await asyncio.gather(
            *(_buckets_once(context, row["subscription_id"], now) for row in asked),
            return_exceptions=True,
        )
        for row, answer in zip(asked, answers, strict=True):
            if isinstance(answer, UpstreamUnavailable):
                continue  # logged once by the upstream client; the copy is shown, marked
            if isinstance(answer, BaseException):
                raise answer
            fetched[row["subscription_id"]] = answer
    views = []
    stale = False
    for row, is_due in zip(rows, due, strict=True):
        subscription_id = row["subscription_id"]
        if subscription_id in fetched:
            balance = _balance("current", now, summarise_balances(fetched[subscription_id]))
            good_until = _earliest(good_until, now + timedelta(seconds=fresh_for))
        elif row["buckets"] is not None:
            current = not is_due
            stale = stale or not current
            if current and row["status"] != "terminated":
                good_until = _earliest(good_until, row["fetched_at"] + timedelta(seconds=fresh_for))
            balance = _balance(
                "current" if current else "stale",
                row["fetched_at"],
                summarise_balances(row["buckets"]),
            )
        elif row["status"] == "terminated":
            balance = _no_balance("current", now)
        else:
            stale = True
            balance = _no_balance("unavailable", None)
        views.append(
            {
                _LINE.id: subscription_id,
                _LINE.msisdn: row["msisdn"],
                _LINE.status: row["status"],
                _LINE.sim_kind: row["sim_kind"],
                _LINE.payment_type: row["payment_type"],
                _LINE.offering_id: row["offering_id"],
                _LINE.activated_at: row["activated_at"],
                _LINE.balance: balance,
            }
        )
    return views, (["balances"] if stale else []), good_until


def _earliest(known: datetime | None, candidate: datetime) -> datetime:
    return candidate if known is None or candidate < known else known


async def _buckets_once(
    context: Context, subscription_id: str, now: datetime
) -> list[dict[str, Any]]:
    """A line's buckets from billing-sync, asked once however many requests want them now."""
    return await asyncio.shield(_buckets_future(context, subscription_id, now))


def _buckets_future(
    context: Context, subscription_id: str, now: datetime
) -> asyncio.Future[list[dict[str, Any]]]:
    running = context.refreshing.get(subscription_id)
    if running is None:
        running = asyncio.ensure_future(_fetch_and_keep(context, subscription_id, now))
        context.refreshing[subscription_id] = running
        running.add_done_callback(lambda _: context.refreshing.pop(subscription_id, None))
    return running


def _retrieved(done: asyncio.Future[Any]) -> None:
    """The end of a refresh nobody waits for (billing-sync's failures are logged by its client)."""
    if done.cancelled():
        return
    error = done.exception()
    if error is not None and not isinstance(error, UpstreamUnavailable):
        _log.error("refreshing a line's balances failed", exc_info=error)


async def _fetch_and_keep(
    context: Context, subscription_id: str, now: datetime
) -> list[dict[str, Any]]:
    buckets = await context.upstreams.buckets(subscription_id)
    try:
        async with context.unit_of_work() as uow:
            await uow.portal.put_balance_copy(
                subscription_id=subscription_id, buckets=buckets, fetched_at=now
            )
            await uow.commit()
    except Exception:
        # The copy is for later screens; this one shows what billing-sync just said.
        _log.warning("could not keep a copy of a line's balances", exc_info=True)
    return buckets


def _balance(status: Freshness, as_of: datetime | None, summary: BalanceSummary) -> dict[str, Any]:
    """A ``BalanceRead`` by alias, as a dict."""
    return {
        _BALANCE.status: status,
        _BALANCE.as_of: as_of,
        _BALANCE.airtime: (
            {_MONEY.amount: float(summary.airtime), _MONEY.currency: "ZAR"}
            if summary.airtime is not None
            else None
        ),
        _BALANCE.data_mb: float(summary.data_mb),
        _BALANCE.voice_minutes: float(summary.voice_minutes),
        _BALANCE.sms: float(summary.sms),
        _BALANCE.allowances: [
            {
                _ALLOWANCE.name: a.name,
                _ALLOWANCE.usage_type: a.usage_type,
                _ALLOWANCE.remaining: float(a.remaining),
                _ALLOWANCE.initial: float(a.initial),
                _ALLOWANCE.units: a.units,
                _ALLOWANCE.expires_at: None if a.expires_at is None else str(a.expires_at),
                _ALLOWANCE.status: a.status,
            }
            for a in summary.allowances
        ],
    }


def _no_balance(status: Freshness, as_of: datetime | None) -> dict[str, Any]:
    return {
        _BALANCE.status: status,
        _BALANCE.as_of: as_of,
        _BALANCE.airtime: None,
        _BALANCE.data_mb: None,
        _BALANCE.voice_minutes: None,
        _BALANCE.sms: None,
        _BALANCE.allowances: [],
    }


async def usage(
    context: Context, *, customer_id: str, line_id: str, date_from: date, date_to: date
) -> UsageRead:
    async with context.unit_of_work() as uow:
        row = await uow.portal.line(customer_id=customer_id, subscription_id=line_id)
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
            copy = await uow.portal.usage_copy(
                subscription_id=line_id, date_from=date_from, date_to=date_to
            )
        if copy is None:
            days, status, as_of = [], "unavailable", None
        else:
            (days, as_of), status = copy, "stale"
    else:
        async with context.unit_of_work() as uow:
            await uow.portal.put_usage_copy(
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
        row = await uow.portal.line(customer_id=customer_id, subscription_id=line_id)
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
        rows, total = await uow.portal.orders_of(
            customer_id=customer_id, offset=offset, limit=limit
        )
    if total is None and offset > 0:
        async with context.unit_of_work() as uow:
            _, total = await uow.portal.orders_of(customer_id=customer_id, offset=0, limit=1)
    return OrdersRead(orders=[order_view(row) for row in rows], total=total or 0)


async def order(context: Context, *, customer_id: str, order_id: str) -> OrderView:
    async with context.unit_of_work() as uow:
        row = await uow.portal.order(customer_id=customer_id, order_id=order_id)
    if row is None:
        raise NotFound(f"you have no order {order_id}")
    view = order_view(row)
    if view.done:
        return view
    notices = await _partner_notices(context)
    if not notices:
        return view
    return view.model_copy(
        update={
            "partner_notices": [
                PartnerNoticeRead.model_validate(n, from_attributes=True) for n in notices
            ]
        }
    )


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
    return OffersRead(
        offers=[OfferRead.model_validate(offer) for offer in found],
        status=status,
        partner_notices=[
            PartnerNoticeRead.model_validate(notice, from_attributes=True)
            for notice in await _partner_notices(context)
        ],
    )


async def _partner_notices(context: Context) -> list[PartnerNotice]:
    """The partners failing now; none when the read model cannot say (the offers still show)."""
    if context.queries is None:
        return []
    try:
        return partner_notices(await context.queries.failing_probes())
    except (OSError, asyncpg.PostgresError) as error:
        _log.info("partner notices unavailable: %s", error)
        return []
