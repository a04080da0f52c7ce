"""The read API portal-api and staff use: buckets (TMF654) and daily usage (TMF635)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

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


async def test_ingested_usage_and_its_charge_read_back_per_day(world: BillingWorld, api):
    from mvno.billing_sync.usage_files import ensure_usage_bucket, ingest_file
    from mvno.common.aws import aws_client

    line = await world.activate()  # starter-psim: R0.10 per MB, R0.90 per minute, R0.50 per SMS
    await world.top_up(line.subscription_id, "100.00")
    await world.buy_bundle(line.subscription_id, sms=1, start=datetime(2026, 11, 1, tzinfo=UTC))
    await ensure_usage_bucket(world.settings)
    m = line.msisdn
    body = "\n".join([
        "record_id,msisdn,usage_type,quantity,started_at",
        f"d1,{m},data,{10 * 1_048_576},2026-11-20T23:59:59Z",
        f"d2,{m},sms,2,2026-11-21T00:00:00Z",
        f"d3,{m},voice,120,2026-11-21T08:00:00+02:00",
    ]) + "\n"  # fmt: skip
    async with aws_client(world.settings, "s3") as s3:
        await s3.put_object(Bucket=world.settings.usage_bucket, Key="r.csv", Body=body.encode())
        await ingest_file(world.sync._unit_of_work, s3, bucket=world.settings.usage_bucket,
                          key="r.csv", slice_rows=10)  # fmt: skip
    answer = await api.get(USAGE, params={"product.id": line.subscription_id})
    days = {
        d["usageDate"]: (
            {c["name"]: c["value"] for c in d["usageCharacteristic"]},
            d["ratedProductUsage"][0]["taxIncludedRatingAmount"]["value"],
        )
        for d in answer.json()
    }
    assert days == {
        # 10 MB out of bundle: R1.00
        "2026-11-20": ({"dataBytes": 10_485_760, "voiceSeconds": 0, "smsCount": 0}, 1.0),
        # 2 SMS, one from the bundle: R0.50; 2 minutes at 06:00 UTC: R1.80
        "2026-11-21": ({"dataBytes": 0, "voiceSeconds": 120, "smsCount": 2}, 2.3),
    }
    assert [d["usageDate"] for d in answer.json()] == ["2026-11-21", "2026-11-20"]
    buckets = (await api.get(BUCKETS, params={"product.id": line.subscription_id})).json()
    assert buckets[0]["remainingValue"] == {"amount": 96.7, "units": "ZAR"}
