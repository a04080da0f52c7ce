"""Buckets and the airtime balance as usage arrives: order of consumption, out-of-bundle rating,
depletion, expiry and low-balance announcements (once per crossing)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mvno.billing_sync.balances import expire_buckets
from mvno.billing_sync.usage_files import ensure_usage_bucket, ingest_file
from mvno.common.aws import aws_client

from .conftest import BillingWorld

MB = 1_048_576
NOW = datetime.now(UTC).replace(microsecond=0)
_ids = itertools.count()


@pytest.fixture
async def use(world: BillingWorld) -> Any:
    """``await use(msisdn, ("data", bytes), ...)``: a usage file with those records, ingested."""
    await ensure_usage_bucket(world.settings)
    async with aws_client(world.settings, "s3") as s3:

        async def ingest(msisdn: str, *records: tuple[str, int], at: datetime = NOW) -> None:
            key = f"u-{next(_ids)}.csv"
            lines = ["record_id,msisdn,usage_type,quantity,started_at"] + [
                f"{key}-{i},{msisdn},{kind},{quantity},{at.isoformat()}"
                for i, (kind, quantity) in enumerate(records)
            ]
            await s3.put_object(
                Bucket=world.settings.usage_bucket, Key=key, Body=("\n".join(lines) + "\n").encode()
            )
            result = await ingest_file(
                world.sync._unit_of_work,
                s3,
                bucket=world.settings.usage_bucket,
                key=key,
                slice_rows=100,
            )
            assert result is not None
            assert result.quarantined == 0

        yield ingest


async def buckets(world: BillingWorld, subscription_id: str) -> dict[str, dict[str, Any]]:
    connection = await world.database()
    try:
        found = await connection.fetch(
            "SELECT * FROM buckets WHERE subscription_id = $1", subscription_id
        )
    finally:
        await connection.close()
    return {r["order_item_id"] or "airtime": dict(r) for r in found}


async def test_the_bucket_expiring_first_is_used_first_then_usage_is_rated(
    world: BillingWorld, use
):
    line = await world.activate()  # starter-psim: out of bundle R0.10 per MB
    sid = line.subscription_id
    await world.top_up(sid, "100.00")
    await world.buy_bundle(sid, data_mb=100, days=20, item="later", start=NOW - timedelta(days=1))
    await world.buy_bundle(sid, data_mb=100, days=5, item="sooner", start=NOW - timedelta(days=1))

    await use(line.msisdn, ("data", 60 * MB))
    state = await buckets(world, sid)
    assert state["sooner"]["remaining"] == 40
    assert state["later"]["remaining"] == 100

    await use(line.msisdn, ("data", 100 * MB))
    state = await buckets(world, sid)
    assert (state["sooner"]["remaining"], state["sooner"]["status"]) == (0, "depleted")
    assert state["later"]["remaining"] == 40
    [depleted] = await world.published("billing.bundle.depleted.v1")
    assert depleted["data"]["bucket_id"] == state["sooner"]["id"]

    await use(line.msisdn, ("data", 90 * MB))  # 40 MB from "later", 50 MB out of bundle
    state = await buckets(world, sid)
    assert state["later"]["status"] == "depleted"
    assert state["airtime"]["remaining"] == 95  # R100 - 50 MB x R0.10
    connection = await world.database()
    try:
        charge = await connection.fetchval("SELECT sum(charge) FROM usage_daily")
    finally:
        await connection.close()
    assert charge == 5


async def test_a_bucket_valid_only_later_is_not_used_for_earlier_usage(world: BillingWorld, use):
    line = await world.activate()
    await world.buy_bundle(
        line.subscription_id, data_mb=100, item="next-week", start=NOW + timedelta(days=7)
    )
    await use(line.msisdn, ("data", 10 * MB))
    assert (await buckets(world, line.subscription_id))["next-week"]["remaining"] == 100


async def test_low_balance_is_announced_once_per_crossing(world: BillingWorld, use):
    line = await world.activate()
    sid = line.subscription_id
    await world.buy_bundle(sid, sms=10, item="sms")  # low below 2 SMS left
    await use(line.msisdn, ("sms", 7))
    assert await world.published("billing.balance.ran_low.v1") == []
    await use(line.msisdn, ("sms", 2))  # 1 left: crossed
    await use(line.msisdn, ("sms", 0))
    [low] = await world.published("billing.balance.ran_low.v1")
    assert low["data"]["balance_type"] == "sms"
    assert low["data"]["remaining"] == {"amount": "1.00", "units": "SMS"}

    # Airtime: R10 is the threshold. Down to R5, topped up to R25, down again: two crossings.
    await world.top_up(sid, "20.00", item="t1")
    await use(line.msisdn, ("voice", 60 * 17), ("sms", 1))  # 17 min x R0.90 = R15.30; last SMS
    await use(line.msisdn, ("voice", 60))
    await world.top_up(sid, "20.00", item="t2")
    await use(line.msisdn, ("voice", 60 * 20))
    lows = [e["data"] for e in await world.published("billing.balance.ran_low.v1")]
    assert [e["balance_type"] for e in lows] == ["sms", "airtime", "airtime"]
    assert lows[1]["bucket_id"] is None
    assert lows[1]["threshold"] == {"amount": "10.00", "units": "ZAR"}


async def test_buckets_past_their_validity_expire_and_are_announced(world: BillingWorld, use):
    line = await world.activate()
    sid = line.subscription_id
    await world.buy_bundle(
        sid, data_mb=100, voice_minutes=10, days=1, item="old", start=NOW - timedelta(days=2)
    )
    await world.buy_bundle(sid, data_mb=100, days=30, item="new")
    async with world.sync._unit_of_work() as uow:
        assert await expire_buckets(uow, at=datetime.now(UTC)) == 2
        await uow.commit()
    async with world.sync._unit_of_work() as uow:
        assert await expire_buckets(uow, at=datetime.now(UTC)) == 0  # once
        await uow.commit()
    expired = [e["data"] for e in await world.published("billing.bundle.expired.v1")]
    assert sorted((e["bucket_type"], e["unused"]["amount"]) for e in expired) == [
        ("data", "100.00"),
        ("voice", "10.00"),
    ]
    await use(line.msisdn, ("data", 30 * MB))
    state = await buckets(world, sid)
    assert state["new"]["remaining"] == 70


async def test_usage_is_rated_at_the_price_in_force_when_it_happened(world: BillingWorld, use):
    from decimal import Decimal

    from mvno.common.events.base import Money
    from mvno.common.events.catalog import OfferingPrice, PriceChanged

    change_at = NOW - timedelta(days=1)
    await world.deliver(PriceChanged(
        offering_id="starter-psim",
        price=OfferingPrice(
            price_id="p-oob-mb-2", price_type="usage", unit_of_measure="MB",
            duty_free_amount=Money(amount=Decimal("0.17")),
            tax_included_amount=Money(amount=Decimal("0.20")), tax_rate=Decimal("15"),
            valid_from=change_at,
        ),
        replaces_price_id="p-oob-mb",
    ))  # fmt: skip
    line = await world.activate()
    await world.top_up(line.subscription_id, "100.00")
    await use(line.msisdn, ("data", 10 * MB), at=change_at - timedelta(hours=1))  # R0.10/MB
    await use(line.msisdn, ("data", 10 * MB), at=change_at + timedelta(hours=1))  # R0.20/MB
    assert (await buckets(world, line.subscription_id))["airtime"]["remaining"] == 97
