"""The billing platform: billing accounts, the subscriptions billed on them, invoices.

A bill run (started through the admin endpoint) invoices every open account once per period for
its active subscriptions' monthly charges plus 15% VAT. Accounts can be listed page by page so a
reconciliation job can compare them with the platform's own records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from mvno.simulators.clock import Clock
from mvno.simulators.errors import Conflict, NotFound
from mvno.simulators.ids import new_id

VAT_PERCENT = 15
PAYMENT_TERMS = timedelta(days=30)


class AccountStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class BillingSubscriptionStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


@dataclass(frozen=True)
class TariffPeriod:
    tariff_code: str
    monthly_charge_cents: int
    since: datetime


@dataclass
class BillingSubscription:
    id: str
    account_id: str
    msisdn: str
    tariff_code: str
    monthly_charge_cents: int
    status: BillingSubscriptionStatus
    started_at: datetime
    external_ref: str | None = None
    ended_at: datetime | None = None
    tariff_history: list[TariffPeriod] = field(default_factory=list)


@dataclass
class BillingAccount:
    id: str
    customer_ref: str
    name: str
    currency: str
    status: AccountStatus
    created_at: datetime
    closed_at: datetime | None = None
    subscription_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InvoiceLine:
    subscription_id: str
    msisdn: str
    tariff_code: str
    amount_cents: int


@dataclass(frozen=True)
class Invoice:
    id: str
    account_id: str
    period: str  # YYYY-MM
    issued_at: datetime
    due_at: datetime
    currency: str
    lines: tuple[InvoiceLine, ...]
    subtotal_cents: int
    vat_cents: int
    total_cents: int


def vat_on(cents: int) -> int:
    """VAT rounded half up to the cent, in integers so no float ever touches money."""
    return (cents * VAT_PERCENT + 50) // 100


class BillingPlatform:
    def __init__(self, rng: random.Random, clock: Clock) -> None:
        self.rng = rng
        self.clock = clock
        self.accounts: dict[str, BillingAccount] = {}
        self.subscriptions: dict[str, BillingSubscription] = {}
        self.invoices: dict[str, Invoice] = {}
        self.invoiced: set[tuple[str, str]] = set()  # (account id, period)
        self.open_account_of: dict[str, str] = {}  # customer ref -> open account id
        self.billed_msisdn: dict[str, str] = {}  # msisdn -> active subscription id

    def create_account(self, *, customer_ref: str, name: str, currency: str) -> BillingAccount:
        if customer_ref in self.open_account_of:
            raise Conflict(
                "account-exists",
                f"Customer {customer_ref} already has an open billing account",
                accountId=self.open_account_of[customer_ref],
            )
        account = BillingAccount(
            id=new_id(self.rng),
            customer_ref=customer_ref,
            name=name,
            currency=currency,
            status=AccountStatus.OPEN,
            created_at=self.clock.now(),
        )
        self.accounts[account.id] = account
        self.open_account_of[customer_ref] = account.id
        return account

    def account(self, account_id: str) -> BillingAccount:
        try:
            return self.accounts[account_id]
        except KeyError:
            raise NotFound("account-not-found", "No such billing account") from None

    def accounts_page(
        self, *, after: str | None, limit: int, status: AccountStatus | None
    ) -> list[BillingAccount]:
        """Accounts in creation order, after the account id ``after`` (the cursor)."""
        ids = list(self.accounts)
        start = 0
        if after is not None:
            if after not in self.accounts:
                raise NotFound("cursor-not-found", "The cursor names no billing account")
            start = ids.index(after) + 1
        page = []
        for account_id in ids[start:]:
            account = self.accounts[account_id]
            if status is None or account.status is status:
                page.append(account)
                if len(page) == limit:
                    break
        return page

    def close_account(self, account_id: str) -> BillingAccount:
        account = self._open_account(account_id, action="close")
        now = self.clock.now()
        for subscription_id in account.subscription_ids:
            subscription = self.subscriptions[subscription_id]
            if subscription.status is BillingSubscriptionStatus.ACTIVE:
                self._end(subscription, now)
        account.status = AccountStatus.CLOSED
        del self.open_account_of[account.customer_ref]
        account.closed_at = now
        return account

    def add_subscription(
        self,
        account_id: str,
        *,
        msisdn: str,
        tariff_code: str,
        monthly_charge_cents: int,
        external_ref: str | None,
    ) -> BillingSubscription:
        account = self._open_account(account_id, action="add a subscription to")
        if msisdn in self.billed_msisdn:
            raise Conflict(
                "msisdn-billed",
                f"{msisdn} is already billed on an active subscription",
                subscriptionId=self.billed_msisdn[msisdn],
            )
        now = self.clock.now()
        subscription = BillingSubscription(
            id=new_id(self.rng),
            account_id=account.id,
            msisdn=msisdn,
            tariff_code=tariff_code,
            monthly_charge_cents=monthly_charge_cents,
            status=BillingSubscriptionStatus.ACTIVE,
            started_at=now,
            external_ref=external_ref,
            tariff_history=[TariffPeriod(tariff_code, monthly_charge_cents, now)],
        )
        self.subscriptions[subscription.id] = subscription
        self.billed_msisdn[msisdn] = subscription.id
        account.subscription_ids.append(subscription.id)
        return subscription

    def subscription(self, subscription_id: str) -> BillingSubscription:
        try:
            return self.subscriptions[subscription_id]
        except KeyError:
            raise NotFound("subscription-not-found", "No such billing subscription") from None

    def change_tariff(
        self, subscription_id: str, *, tariff_code: str, monthly_charge_cents: int
    ) -> BillingSubscription:
        subscription = self._active_subscription(subscription_id, action="change the tariff of")
        subscription.tariff_code = tariff_code
        subscription.monthly_charge_cents = monthly_charge_cents
        subscription.tariff_history.append(
            TariffPeriod(tariff_code, monthly_charge_cents, self.clock.now())
        )
        return subscription

    def end_subscription(self, subscription_id: str) -> BillingSubscription:
        subscription = self._active_subscription(subscription_id, action="end")
        self._end(subscription, self.clock.now())
        return subscription

    def _end(self, subscription: BillingSubscription, now: datetime) -> None:
        subscription.status = BillingSubscriptionStatus.ENDED
        subscription.ended_at = now
        del self.billed_msisdn[subscription.msisdn]

    def invoices_of(self, account_id: str) -> list[Invoice]:
        self.account(account_id)
        return [invoice for invoice in self.invoices.values() if invoice.account_id == account_id]

    def invoice(self, invoice_id: str) -> Invoice:
        try:
            return self.invoices[invoice_id]
        except KeyError:
            raise NotFound("invoice-not-found", "No such invoice") from None

    def bill_run(self, period: str | None) -> list[Invoice]:
        """Invoice each open account with active subscriptions once for ``period`` (YYYY-MM)."""
        now = self.clock.now()
        period = period or now.strftime("%Y-%m")
        issued = []
        for account in self.accounts.values():
            if account.status is not AccountStatus.OPEN or (account.id, period) in self.invoiced:
                continue
            lines = tuple(
                InvoiceLine(s.id, s.msisdn, s.tariff_code, s.monthly_charge_cents)
                for s in (self.subscriptions[i] for i in account.subscription_ids)
                if s.status is BillingSubscriptionStatus.ACTIVE
            )
            if not lines:
                continue
            subtotal = sum(line.amount_cents for line in lines)
            invoice = Invoice(
                id=new_id(self.rng),
                account_id=account.id,
                period=period,
                issued_at=now,
                due_at=now + PAYMENT_TERMS,
                currency=account.currency,
                lines=lines,
                subtotal_cents=subtotal,
                vat_cents=vat_on(subtotal),
                total_cents=subtotal + vat_on(subtotal),
            )
            self.invoices[invoice.id] = invoice
            self.invoiced.add((account.id, period))
            issued.append(invoice)
        return issued

    def _open_account(self, account_id: str, *, action: str) -> BillingAccount:
        account = self.account(account_id)
        if account.status is not AccountStatus.OPEN:
            raise Conflict(
                "account-closed", f"Cannot {action} a closed account", accountStatus="closed"
            )
        return account

    def _active_subscription(self, subscription_id: str, *, action: str) -> BillingSubscription:
        subscription = self.subscription(subscription_id)
        if subscription.status is not BillingSubscriptionStatus.ACTIVE:
            raise Conflict(
                "subscription-ended",
                f"Cannot {action} an ended subscription",
                subscriptionStatus=subscription.status.value,
            )
        return subscription
