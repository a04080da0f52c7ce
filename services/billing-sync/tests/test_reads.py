"""The read API portal-api and staff use: buckets (TMF654) and daily usage (TMF635)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest

from mvno.billing_sync.app import create_app
from mvno.devstack.servers import serve_app
from mvno.devstack.testing import assert_problem, fuzz_openapi

from .conftest import BillingWorld

BUCKETS = "/tmf-api/balanceManagement/v4/bucket"
USAGE = "/tmf-api/usageManagement/v4/usage"


@pytest.fixture
async def api(world: BillingWorld) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve_app(create_app(world.settings)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
    ):
        client.headers.update(world.issuer.headers("portal-api", scopes=["billing:read"]))
        yield client


async def test_reads_need_a_token_with_the_billing_read_scope(world: BillingWorld, api):
    anonymous = await api.get(BUCKETS, params={"product.id": "x"}, headers={"Authorization": ""})
    assert_problem(anonymous, 401, "unauthorized")
    wrong = world.issuer.headers("someone", scopes=["orders:write"])
    assert_problem(
        await api.get(USAGE, params={"product.id": "x"}, headers=wrong), 403, "forbidden"
    )


async def test_an_unknown_subscription_has_no_buckets_and_no_usage(api):
    for path in (BUCKETS, USAGE):
        answer = await api.get(path, params={"product.id": "sub-new"})
        assert answer.status_code == 200
        assert answer.json() == []
        assert answer.headers["X-Total-Count"] == "0"


async def test_bundles_and_airtime_show_as_buckets(world: BillingWorld, api):
    activated = await world.activate()
    sid = activated.subscription_id
    await world.buy_bundle(sid, data_mb=1024, voice_minutes=100, sms=0, item="i1")
    await world.buy_bundle(sid, data_mb=1024, voice_minutes=100, sms=0, item="i1")  # redelivery
    await world.top_up(sid, "50.00", item="t1")
    await world.top_up(sid, "20.00", item="t2")
    await world.top_up(sid, "20.00", item="t2")  # redelivery

    answer = await api.get(BUCKETS, params={"product.id": sid})
    assert answer.status_code == 200
    buckets = answer.json()
    assert answer.headers["X-Total-Count"] == "3"
    airtime, *allowances = buckets
    assert airtime["usageType"] == "airtime"
    assert airtime["remainingValue"] == {"amount": 70.0, "units": "ZAR"}
    assert airtime["initialValue"] == {"amount": 70.0, "units": "ZAR"}
    assert airtime["productOffering"] is None
    assert {b["usageType"]: b["remainingValue"] for b in allowances} == {
        "data": {"amount": 1024.0, "units": "MB"},
        "voice": {"amount": 100.0, "units": "minute"},
    }
    assert all(b["status"] == "active" and b["product"] == {"id": sid} for b in buckets)
    assert allowances[0]["productOffering"] == {"id": "data-1gb-30d"}

    page = await api.get(BUCKETS, params={"product.id": sid, "offset": 1, "limit": 1})
    assert page.headers["X-Total-Count"] == "3"
    assert page.headers["X-Result-Count"] == "1"
    assert page.json() == [buckets[1]]


async def test_usage_is_one_entry_per_day_newest_first_within_the_dates(world: BillingWorld, api):
    connection = await world.database()
    try:
        await connection.executemany(
            "INSERT INTO usage_daily VALUES ($1, $2, $3, $4, $5, $6, now())",
            [("sub-u", date(2026, 11, d), d * 1000, d * 60, d, d / 4) for d in (1, 2, 3, 4)],
        )
    finally:
        await connection.close()
    answer = await api.get(
        USAGE, params={"product.id": "sub-u", "date.gte": "2026-11-02", "date.lte": "2026-11-03"}
    )
    assert answer.status_code == 200
    assert answer.headers["X-Total-Count"] == "2"
    assert answer.json() == [
        {
            "id": "sub-u:2026-11-03",
            "usageDate": "2026-11-03",
            "status": "rated",
            "product": {"id": "sub-u"},
            "usageCharacteristic": [
                {"name": "dataBytes", "value": 3000},
                {"name": "voiceSeconds", "value": 180},
                {"name": "smsCount", "value": 3},
            ],
            "ratedProductUsage": [{"taxIncludedRatingAmount": {"unit": "ZAR", "value": 0.75}}],
        },
        {
            "id": "sub-u:2026-11-02",
            "usageDate": "2026-11-02",
            "status": "rated",
            "product": {"id": "sub-u"},
            "usageCharacteristic": [
                {"name": "dataBytes", "value": 2000},
                {"name": "voiceSeconds", "value": 120},
                {"name": "smsCount", "value": 2},
            ],
            "ratedProductUsage": [{"taxIncludedRatingAmount": {"unit": "ZAR", "value": 0.5}}],
        },
    ]


async def test_bad_queries_get_problem_answers(api):
    assert_problem(await api.get(BUCKETS), 422, "validation-error")
    assert_problem(await api.get(BUCKETS, params={"product.id": "a b"}), 422, "validation-error")
    assert_problem(
        await api.get(USAGE, params={"product.id": "s", "date.gte": "2026-13-01"}),
        422,
        "validation-error",
    )
    assert_problem(
        await api.get(
            USAGE, params={"product.id": "s", "date.gte": "2026-11-05", "date.lte": "2026-11-01"}
        ),
        400,
        "bad-request",
    )
    assert_problem(
        await api.get(BUCKETS, params={"product.id": "s", "limit": 0}), 422, "validation-error"
    )


@pytest.mark.parametrize("negative", [False, True])
async def test_no_generated_request_gets_a_server_error(api, negative):
    failures = await asyncio.to_thread(
        fuzz_openapi,
        str(api.base_url).rstrip("/"),
        dict(api.headers),
        negative=negative,
        examples=15,
    )
    assert failures == []
