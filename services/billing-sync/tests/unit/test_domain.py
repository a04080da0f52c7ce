"""The pure rules: no database, no network."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mvno.billing_sync.domain.accounts import (
    BilledLine,
    LocalLine,
    compare,
    retry_delay,
    tariff_code,
)
from mvno.billing_sync.domain.allowances import Bucket, consume, crossings, rate
from mvno.billing_sync.domain.usage import InvalidRecord, in_units, validate

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def bucket(
    id: str, remaining: str, *, days: int | None = 10, kind: str = "data", initial: str = "100"
) -> Bucket:
    return Bucket(
        id=id, usage_type=kind, initial=Decimal(initial), remaining=Decimal(remaining),
        valid_from=NOW - timedelta(days=1),
        valid_to=None if days is None else NOW + timedelta(days=days), created_at=NOW,
    )  # fmt: skip


def test_consumption_takes_the_bucket_expiring_first_and_returns_the_rest():
    late, soon = bucket("late", "100", days=20), bucket("soon", "30", days=2)
    voice = bucket("voice", "50", kind="voice")
    left = consume([late, soon, voice], "data", Decimal("50"), NOW, NOW)
    assert left == 0
    assert (soon.remaining, soon.status) == (0, "depleted")
    assert late.remaining == 80
    assert voice.remaining == 50
    assert consume([late, soon], "data", Decimal("90"), NOW, NOW) == 10


def test_expired_or_not_yet_valid_buckets_are_not_used():
    expired = bucket("old", "100", days=-1)
    future = Bucket("f", "data", Decimal(100), Decimal(100), NOW + timedelta(days=1), None, NOW)
    assert consume([expired, future], "data", Decimal("5"), NOW, NOW) == 5


def test_rating_needs_a_usage_price():
    assert rate(Decimal("12.5"), Decimal("0.10")) == Decimal("1.25")
    assert rate(Decimal("12.5"), None) == 0
    assert rate(Decimal(0), Decimal("1")) == 0


def test_low_balance_is_owed_once_and_rearmed_above_the_threshold():
    data = bucket("d", "25")
    consume([data], "data", Decimal("10"), NOW, NOW)  # 15 left of 100: below 20%
    assert [c.kind for c in crossings([data])] == ["ran_low"]
    consume([data], "data", Decimal("1"), NOW, NOW)
    assert crossings([data]) == []
    data.remaining = Decimal(50)
    crossings([data])
    assert not data.low_notified


def test_reconciliation_sees_each_kind_of_drift():
    local = [
        LocalLine("s-ok", "c", "+27820000001", "starter-psim", "active"),
        LocalLine("s-missing", "c", "+27820000002", "starter-psim", "suspended"),
        LocalLine("s-tariff", "c", "+27820000003", "contract-10gb", "active"),
        LocalLine("s-closed", "c", "+27820000004", "starter-psim", "terminated"),
    ]
    billed = [
        BilledLine("b1", "a", "s-ok", "+27820000001", "STARTER-PSIM", "active"),
        BilledLine("b2", "a", "s-missing", "+27820000002", "STARTER-PSIM", "ended"),
        BilledLine("b3", "a", "s-tariff", "+27820000003", "STARTER-PSIM", "active"),
        BilledLine("b4", "a", "s-closed", "+27820000004", "STARTER-PSIM", "active"),
        BilledLine("b5", "a", None, "+27820000005", "X", "active"),
    ]
    assert {
        (f.drift, f.subscription_id, f.billing_subscription_id) for f in compare(local, billed)
    } == {
        ("missing", "s-missing", None),
        ("wrong_tariff", "s-tariff", "b3"),
        ("extra", "s-closed", "b4"),
        ("extra", None, "b5"),
    }


def test_tariff_codes_fit_the_billing_platform():
    assert tariff_code("contract-10gb") == "CONTRACT-10GB"
    assert tariff_code("a") == "A_"
    assert tariff_code("_x.y " + "z" * 40).startswith("TX_Y_")
    assert len(tariff_code("z" * 40)) == 32


def test_backoff_grows_and_is_capped():
    rng = random.Random(3)
    delays = [retry_delay(n, base=1, maximum=8, rng=rng) for n in range(1, 8)]
    assert 0.5 <= delays[0] <= 1
    assert all(d <= 8 for d in delays)
    assert delays[-1] >= 4


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (["r", "+27821234567", "data", "1"], "expected 5 fields"),
        (["r 1", "+27821234567", "data", "1", "2026-11-28T10:00:00Z"], "record_id"),
        (["r", "27821234567", "data", "1", "2026-11-28T10:00:00Z"], "msisdn"),
        (["r", "+27821234567", "fax", "1", "2026-11-28T10:00:00Z"], "usage_type"),
        (["r", "+27821234567", "data", "-1", "2026-11-28T10:00:00Z"], "quantity"),
        (["r", "+27821234567", "sms", "1001", "2026-11-28T10:00:00Z"], "quantity above"),
        (["r", "+27821234567", "data", "1", "yesterday"], "ISO 8601"),
        (["r", "+27821234567", "data", "1", "2026-11-28T10:00:00"], "UTC offset"),
        (["r", "+27821234567", "data", "1", "1970-01-01T00:00:00Z"], "out of range"),
    ],
)
def test_invalid_records_say_why(fields, reason):
    with pytest.raises(InvalidRecord, match=reason):
        validate(fields)


def test_a_valid_record_and_its_units():
    assert validate(["r1", "+27821234567", "voice", "90", "2026-11-28T10:00:00+02:00"])[3] == 90
    assert in_units("data", 1_048_576 * 3) == 3
    assert in_units("voice", 90) == Decimal("1.5")
    assert in_units("sms", 2) == 2
