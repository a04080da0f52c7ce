"""Events published by billing-sync (producer ``billing``): billing accounts, usage, balances.

* Account sync: ``billing.account.created.v1`` is what the provisioning saga waits for after a
  subscription is activated (matched by ``subscription_id``, and ``order_id`` when an order caused
  it). Any account operation whose retries are spent publishes ``billing.account.sync_failed.v1``
  naming the operation, so one failure type covers create, tariff change, suspend, resume and
  terminate, and the saga fails its step on ``operation == "create"``.
* Usage is published aggregated per subscription and ingestion batch (one usage file or one poll of
  the network's usage API), never per record: a million-record file must not become a million
  events.
* Balances and allowances follow TMF654: an amount with ``units``. A bundle opens one bucket per
  kind of allowance it gives (data, voice, SMS); ``depleted`` and ``expired`` are per bucket, so a
  combo bundle whose data is used up still has its minutes.
* ``billing.balance.ran_low.v1`` fires once per crossing of the low threshold (not on every usage
  batch below it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, NonNegativeInt, PositiveInt

from mvno.common.events.base import ContractModel, DecimalString, EventData

PRODUCER = "billing"

BalanceType = Literal["airtime", "data", "voice", "sms"]
"""The prepaid airtime balance, or an allowance bucket of one kind."""

BucketType = Literal["data", "voice", "sms"]
"""The kind of allowance one bucket holds."""


class Quantity(ContractModel):
    """An amount in some unit (TMF654 Quantity): rand for airtime, MB, minutes or SMS."""

    amount: DecimalString
    units: Literal["ZAR", "MB", "minute", "SMS"]


class AccountCreated(EventData):
    """The billing platform has an account for a subscription; billing can start."""

    event_type = "billing.account.created.v1"
    subject_field = "subscription_id"

    billing_account_id: str = Field(min_length=1)
    subscription_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    order_id: str | None = None
    """The order whose activation asked for it; ``None`` when reconciliation repaired a gap."""


class AccountSyncFailed(EventData):
    """An operation on a subscription's billing account failed for good (retries spent)."""

    event_type = "billing.account.sync_failed.v1"
    subject_field = "subscription_id"

    subscription_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    order_id: str | None = None
    operation: Literal["create", "change_tariff", "suspend", "resume", "terminate"]
    reason: str
    """What went wrong, for operators; never personal data."""


class UsageRecorded(EventData):
    """Usage of one subscription from one ingestion batch was recorded (and rated)."""

    event_type = "billing.usage.recorded.v1"
    subject_field = "subscription_id"

    subscription_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    batch_id: str = Field(min_length=1)
    """The ingestion batch (usage file or API poll); with ``subscription_id``, unique."""
    source: Literal["usage_file", "usage_api"]
    usage_from: AwareDatetime
    """Earliest record's timestamp in this aggregate."""
    usage_to: AwareDatetime
    """Latest record's timestamp in this aggregate."""
    record_count: PositiveInt
    data_bytes: NonNegativeInt
    voice_seconds: NonNegativeInt
    sms_count: NonNegativeInt


class BalanceRanLow(EventData):
    """A balance or bucket fell below its low threshold (once per crossing)."""

    event_type = "billing.balance.ran_low.v1"
    subject_field = "subscription_id"

    subscription_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    balance_type: BalanceType
    bucket_id: str | None = None
    """The allowance bucket; ``None`` for the airtime balance."""
    remaining: Quantity
    threshold: Quantity


class BundleDepleted(EventData):
    """A bundle's bucket is used up before it expired."""

    event_type = "billing.bundle.depleted.v1"
    subject_field = "subscription_id"

    subscription_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    bucket_id: str = Field(min_length=1)
    bucket_type: BucketType
    offering_id: str = Field(min_length=1)
    """The bundle's offering."""


class BundleExpired(EventData):
    """A bundle's bucket reached the end of its validity; what was left is forfeited."""

    event_type = "billing.bundle.expired.v1"
    subject_field = "subscription_id"

    subscription_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    bucket_id: str = Field(min_length=1)
    bucket_type: BucketType
    offering_id: str = Field(min_length=1)
    unused: Quantity
    """What was left in the bucket when it expired (zero units when it was depleted first)."""


EVENTS: tuple[type[EventData], ...] = (
    AccountCreated,
    AccountSyncFailed,
    UsageRecorded,
    BalanceRanLow,
    BundleDepleted,
    BundleExpired,
)
"""Every event this producer publishes, listed by hand for the registry."""
