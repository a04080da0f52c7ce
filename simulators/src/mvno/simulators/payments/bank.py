"""The bank's payment API: authorise, capture, void and refund against a customer's account.

Accounts open themselves on first use with the configured opening balance, except the chosen test
accounts: the insufficient-funds ones start empty and the blocked ones refuse everything. An
authorisation holds funds; capture takes (part of) them, void releases them, refunds give
captured money back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from mvno.simulators.clock import Clock
from mvno.simulators.errors import Conflict, Declined, Invalid, NotFound
from mvno.simulators.ids import new_id


class PaymentStatus(StrEnum):
    AUTHORISED = "authorised"
    CAPTURED = "captured"
    VOIDED = "voided"
    PARTIALLY_REFUNDED = "partially-refunded"
    REFUNDED = "refunded"


@dataclass
class Account:
    number: str
    balance_cents: int
    held_cents: int = 0
    blocked: bool = False

    @property
    def available_cents(self) -> int:
        return self.balance_cents - self.held_cents


@dataclass(frozen=True)
class Refund:
    id: str
    amount_cents: int
    created_at: datetime


@dataclass
class Payment:
    id: str
    account_number: str
    amount_cents: int
    currency: str
    reference: str
    status: PaymentStatus
    created_at: datetime
    captured_cents: int = 0
    refunded_cents: int = 0
    captured_at: datetime | None = None
    voided_at: datetime | None = None
    refunds: list[Refund] = field(default_factory=list)


@dataclass(frozen=True)
class BankConfig:
    opening_balance_cents: int
    insufficient_funds_accounts: frozenset[str]
    blocked_accounts: frozenset[str]


class Bank:
    def __init__(self, rng: random.Random, clock: Clock, config: BankConfig) -> None:
        self.rng = rng
        self.clock = clock
        self.config = config
        self.accounts: dict[str, Account] = {}
        self.payments: dict[str, Payment] = {}

    def account(self, number: str) -> Account:
        account = self.accounts.get(number)
        if account is None:
            empty = number in self.config.insufficient_funds_accounts
            account = Account(
                number=number,
                balance_cents=0 if empty else self.config.opening_balance_cents,
                blocked=number in self.config.blocked_accounts,
            )
            self.accounts[number] = account
        return account

    def set_account(self, number: str, *, balance_cents: int, blocked: bool) -> Account:
        account = self.account(number)
        account.balance_cents = balance_cents
        account.blocked = blocked
        return account

    def authorise(
        self, *, account_number: str, amount_cents: int, currency: str, reference: str
    ) -> Payment:
        if currency != "ZAR":
            raise Invalid("currency-unsupported", "The bank takes payments in ZAR only")
        account = self._usable(account_number)
        if account.available_cents < amount_cents:
            raise Declined(
                "insufficient-funds",
                "The account does not have enough available funds",
                accountNumber=account_number,
            )
        account.held_cents += amount_cents
        payment = Payment(
            id=new_id(self.rng),
            account_number=account_number,
            amount_cents=amount_cents,
            currency=currency,
            reference=reference,
            status=PaymentStatus.AUTHORISED,
            created_at=self.clock.now(),
        )
        self.payments[payment.id] = payment
        return payment

    def capture(self, payment_id: str, amount_cents: int | None) -> Payment:
        payment = self._in_status(payment_id, PaymentStatus.AUTHORISED, action="capture")
        amount = payment.amount_cents if amount_cents is None else amount_cents
        if amount > payment.amount_cents:
            raise Invalid(
                "amount-too-large",
                f"Cannot capture more than the {payment.amount_cents} cents authorised",
            )
        account = self._usable(payment.account_number)
        account.held_cents -= payment.amount_cents
        account.balance_cents -= amount
        payment.captured_cents = amount
        payment.status = PaymentStatus.CAPTURED
        payment.captured_at = self.clock.now()
        return payment

    def void(self, payment_id: str) -> Payment:
        payment = self._in_status(payment_id, PaymentStatus.AUTHORISED, action="void")
        self.account(payment.account_number).held_cents -= payment.amount_cents
        payment.status = PaymentStatus.VOIDED
        payment.voided_at = self.clock.now()
        return payment

    def refund(self, payment_id: str, amount_cents: int | None) -> Payment:
        payment = self._in_status(
            payment_id,
            PaymentStatus.CAPTURED,
            PaymentStatus.PARTIALLY_REFUNDED,
            action="refund",
        )
        refundable = payment.captured_cents - payment.refunded_cents
        amount = refundable if amount_cents is None else amount_cents
        if amount > refundable:
            raise Invalid(
                "amount-too-large", f"Only {refundable} cents of this payment can be refunded"
            )
        self.account(payment.account_number).balance_cents += amount
        payment.refunded_cents += amount
        payment.refunds.append(Refund(new_id(self.rng), amount, self.clock.now()))
        payment.status = (
            PaymentStatus.REFUNDED
            if payment.refunded_cents == payment.captured_cents
            else PaymentStatus.PARTIALLY_REFUNDED
        )
        return payment

    def payment(self, payment_id: str) -> Payment:
        try:
            return self.payments[payment_id]
        except KeyError:
            raise NotFound("payment-not-found", "No such payment") from None

    def _usable(self, account_number: str) -> Account:
        account = self.account(account_number)
        if account.blocked:
            raise Declined(
                "account-blocked", "The account is blocked", accountNumber=account_number
            )
        return account

    def _in_status(self, payment_id: str, *allowed: PaymentStatus, action: str) -> Payment:
        payment = self.payment(payment_id)
        if payment.status not in allowed:
            raise Conflict(
                "payment-state",
                f"Cannot {action} a payment that is {payment.status.value}",
                paymentStatus=payment.status.value,
            )
        return payment
