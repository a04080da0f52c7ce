"""portal-api's pure rules: balances summed for a screen, purchases checked and turned into orders."""

from datetime import UTC, datetime, timedelta

import pytest

from mvno.portal_api.domain.model import (
    Line,
    NotAllowed,
    NotFound,
    PortalError,
    Purchase,
    RicaDetails,
    check_purchase,
    merge_items,
    needs_refresh,
    order_request,
    order_title,
    summarise_balances,
)

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
ACTIVE = Line("line-1", "alice", "active", "prepaid")
RICA = RicaDetails("sa_id", "8001015009087", "Thandi Nkosi", "1 Main Road", "Cape Town", "8001")


def test_balances_sum_active_buckets_per_kind_and_keep_airtime_apart() -> None:
    summary = summarise_balances(
        [
            {"usageType": "airtime", "remainingValue": {"amount": 12.5, "units": "ZAR"}},
            {
                "usageType": "data",
                "remainingValue": {"amount": 300, "units": "MB"},
                "status": "active",
            },
            {
                "usageType": "data",
                "remainingValue": {"amount": 700, "units": "MB"},
                "status": "active",
            },
            {
                "usageType": "data",
                "remainingValue": {"amount": 999, "units": "MB"},
                "status": "expired",
            },
            {"usageType": "voice", "remainingValue": {"amount": 42, "units": "minute"}},
        ]
    )
    assert summary.airtime == 12.5
    assert summary.data_mb == 1000
    assert summary.voice_minutes == 42
    assert summary.sms == 0
    assert len(summary.allowances) == 4


def test_no_airtime_bucket_means_no_airtime_figure_rather_than_zero() -> None:
    assert summarise_balances([]).airtime is None


@pytest.mark.parametrize(
    ("fetched", "invalidated", "expected"),
    [
        (None, None, True),
        (NOW - timedelta(seconds=5), None, False),
        (NOW - timedelta(seconds=31), None, True),
        (NOW - timedelta(seconds=5), NOW - timedelta(seconds=1), True),
        (NOW - timedelta(seconds=5), NOW - timedelta(seconds=9), False),
    ],
)
def test_a_balance_copy_is_refreshed_when_old_or_invalidated(
    fetched, invalidated, expected
) -> None:
    assert (
        needs_refresh(fetched_at=fetched, invalidated_at=invalidated, now=NOW, fresh_for=30)
        is expected
    )


def test_a_bundle_becomes_a_modify_item_on_the_line() -> None:
    body = order_request(
        Purchase("bundle", "data-1gb-30d", subscription_id="line-1", bank_account="1234567"),
        customer_id="alice",
        channel="app",
    )
    assert body == {
        "channel": [{"id": "app"}],
        "relatedParty": [{"id": "alice", "role": "Customer"}],
        "productOrderItem": [
            {
                "id": "1",
                "productOffering": {"id": "data-1gb-30d"},
                "action": "modify",
                "change": "bundle",
                "product": {"id": "line-1"},
            }
        ],
        "payment": [{"id": "1234567", "@referredType": "BankAccount"}],
    }


def test_a_new_line_carries_its_registration() -> None:
    body = order_request(
        Purchase("line", "starter-esim", sim_kind="eSIM", rica=RICA), customer_id="a", channel="app"
    )
    assert body["productOrderItem"][0]["action"] == "add"
    assert body["productOrderItem"][0]["simKind"] == "eSIM"
    assert body["customer"]["address"] == {
        "line1": "1 Main Road",
        "city": "Cape Town",
        "postalCode": "8001",
    }


def test_purchases_are_checked_against_the_callers_own_line() -> None:
    with pytest.raises(NotFound):
        check_purchase(Purchase("bundle", "b", subscription_id="line-9"), None)
    with pytest.raises(NotAllowed):
        check_purchase(
            Purchase("bundle", "b", subscription_id="line-1"),
            Line("line-1", "alice", "suspended", "prepaid"),
        )
    with pytest.raises(NotAllowed):
        check_purchase(
            Purchase("airtime", "a", subscription_id="line-1"),
            Line("line-1", "alice", "active", "postpaid"),
        )
    with pytest.raises(PortalError):
        check_purchase(Purchase("line", "starter-esim", sim_kind="eSIM"), None)  # no RICA
    check_purchase(Purchase("bundle", "b", subscription_id="line-1"), ACTIVE)


def test_event_progress_is_laid_over_what_the_placing_answer_knew() -> None:
    known = [{"item_id": "1", "action": "modify", "change": "bundle", "state": "acknowledged"}]
    merged = merge_items(
        known, [{"item_id": "1", "action": "modify", "state": "completed", "change": None}]
    )
    assert merged == [
        {"item_id": "1", "action": "modify", "change": "bundle", "state": "completed"}
    ]
    assert order_title(merged) == "Bundle"
