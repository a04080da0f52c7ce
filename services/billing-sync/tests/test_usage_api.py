"""The network operator's usage API (the simulator), polled with a cursor."""

from __future__ import annotations

from typing import Any

from mvno.billing_sync.usage_api import poll_once

from .conftest import BillingWorld

PERSON = {
    "idNumber": "8001015009087",
    "fullName": "Thandi Mokoena",
    "residentialAddress": {"line1": "12 Long Street", "city": "Cape Town", "postalCode": "8001"},
}


async def network_line(world: BillingWorld) -> dict[str, Any]:
    """A line live on the simulated network (reserved, RICA-registered, activated)."""
    sim = world.simulators
    msisdn = (await sim.post("/mno/v1/msisdn-reservations")).json()["msisdn"]
    assert (
        await sim.post("/mno/v1/rica-registrations", json={"msisdn": msisdn, **PERSON})
    ).is_success
    iccid = (await sim.get("/mno/v1/sims", params={"status": "available", "limit": 1})).json()[
        "items"
    ][0]["iccid"]
    answer = await sim.post(
        "/mno/v1/subscriptions",
        json={"msisdn": msisdn, "iccid": iccid, "tariffCode": "PREPAID_1GB"},
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def test_polling_ingests_each_record_once_and_resumes_after_its_cursor(world: BillingWorld):
    ours = await network_line(world)
    other = await network_line(world)  # a number billing-sync does not know: quarantined
    await world.activate(msisdn=ours["msisdn"])
    # A simulated day passes: every live line accrues usage records.
    await world.simulators.post("/admin/clock/advance", json={"seconds": 24 * 3600})
    exported = (await world.simulators.get("/mno/v1/usage-records", params={"limit": 500})).json()
    records = exported["records"]
    assert records, "the simulator accrued no usage"
    ours_count = sum(1 for r in records if r["msisdn"] == ours["msisdn"])
    others = sum(1 for r in records if r["msisdn"] == other["msisdn"])

    results = await poll_once(world.sync._unit_of_work, world.partners.network, page_size=7)
    assert sum(r.accepted for r in results) == ours_count
    assert sum(r.quarantined for r in results) == others
    assert await poll_once(world.sync._unit_of_work, world.partners.network, page_size=7) == []

    await world.simulators.post("/admin/clock/advance", json={"seconds": 24 * 3600})
    later = await poll_once(world.sync._unit_of_work, world.partners.network, page_size=500)
    assert later
    connection = await world.database()
    try:
        stored = await connection.fetchval("SELECT count(*) FROM usage_records")
        cursor = await connection.fetchval("SELECT cursor FROM usage_cursors")
    finally:
        await connection.close()
    everything = (await world.simulators.get("/mno/v1/usage-records", params={"limit": 500})).json()
    assert stored == sum(1 for r in everything["records"] if r["msisdn"] == ours["msisdn"])
    assert cursor == everything["nextCursor"]
    recorded = await world.published("billing.usage.recorded.v1")
    assert {e["data"]["source"] for e in recorded} == {"usage_api"}
