"""The host network operator over HTTP: numbers, SIMs, RICA, subscriptions and usage export."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import phonenumbers
import pytest
from stdnum import luhn

from mvno.devstack.testing import assert_problem

UNKNOWN_ICCID = "892701999999999999" + luhn.calc_check_digit("892701999999999999")


ADDRESS = {"line1": "12 Long Street", "city": "Cape Town", "postalCode": "8001"}
Activate = Callable[..., Awaitable[dict[str, Any]]]


# Numbers


async def test_pool_holds_south_african_mobile_numbers_in_e164(client: httpx.AsyncClient):
    numbers = (await client.get("/mno/v1/msisdns", params={"limit": 200})).json()["items"]
    assert len(numbers) == 200
    for number in numbers:
        assert re.fullmatch(r"\+27[6-8][0-9]{8}", number["msisdn"])
        parsed = phonenumbers.parse(number["msisdn"])
        assert phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
        assert number["status"] == "available"


async def test_reserving_takes_a_number_out_of_the_pool_until_released(client: httpx.AsyncClient):
    reservation = (await client.post("/mno/v1/msisdn-reservations")).json()
    assert reservation["status"] == "active"
    reserved = (await client.get("/mno/v1/msisdns", params={"status": "reserved"})).json()
    assert [n["msisdn"] for n in reserved["items"]] == [reservation["msisdn"]]

    again = await client.post("/mno/v1/msisdn-reservations", json={"msisdn": reservation["msisdn"]})
    assert_problem(again, 409, "msisdn-unavailable")

    released = await client.post(f"/mno/v1/msisdn-reservations/{reservation['id']}/release")
    assert released.json()["status"] == "released"
    chosen = await client.post(
        "/mno/v1/msisdn-reservations", json={"msisdn": reservation["msisdn"]}
    )
    assert chosen.status_code == 201
    twice = await client.post(f"/mno/v1/msisdn-reservations/{reservation['id']}/release")
    assert_problem(twice, 409, "reservation-not-active")


async def test_a_reservation_expires_after_its_hold(client: httpx.AsyncClient):
    reservation = (
        await client.post("/mno/v1/msisdn-reservations", json={"holdSeconds": 60})
    ).json()
    await client.post("/admin/clock/advance", json={"seconds": 59})
    still = await client.get(f"/mno/v1/msisdn-reservations/{reservation['id']}")
    assert still.json()["status"] == "active"

    await client.post("/admin/clock/advance", json={"seconds": 2})
    expired = await client.get(f"/mno/v1/msisdn-reservations/{reservation['id']}")
    assert expired.json()["status"] == "expired"
    free = await client.post("/mno/v1/msisdn-reservations", json={"msisdn": reservation["msisdn"]})
    assert free.status_code == 201


async def test_reservation_replayed_with_its_idempotency_key(client: httpx.AsyncClient):
    headers = {"Idempotency-Key": "order-1-reserve"}
    first = await client.post("/mno/v1/msisdn-reservations", headers=headers)
    again = await client.post("/mno/v1/msisdn-reservations", headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    reserved = (await client.get("/mno/v1/msisdns", params={"status": "reserved"})).json()
    assert len(reserved["items"]) == 1

    other_body = await client.post(
        "/mno/v1/msisdn-reservations", headers=headers, json={"holdSeconds": 30}
    )
    assert_problem(other_body, 422, "idempotency-key-reused")


@pytest.mark.parametrize(
    ("msisdn", "status", "slug"),
    [
        ("+27123", 422, "validation-error"),
        ("+27111234567", 422, "msisdn-invalid"),  # a Johannesburg landline
        ("+27821234567", 404, "msisdn-not-found"),  # mobile, but not in this pool
    ],
)
async def test_reserving_a_number_that_cannot_be_had(
    client: httpx.AsyncClient, msisdn: str, status: int, slug: str
):
    response = await client.post("/mno/v1/msisdn-reservations", json={"msisdn": msisdn})
    assert_problem(response, status, slug)


# SIMs


async def test_physical_sims_have_valid_19_digit_iccids(client: httpx.AsyncClient):
    sims = (await client.get("/mno/v1/sims", params={"kind": "physical"})).json()["items"]
    assert sims
    for sim in sims:
        assert len(sim["iccid"]) == 19
        assert sim["iccid"].startswith("8927")
        assert luhn.is_valid(sim["iccid"])
        assert sim["status"] == "available"


async def test_an_esim_profile_comes_with_an_lpa_activation_code(client: httpx.AsyncClient):
    response = await client.post("/mno/v1/esim-profiles")
    assert response.status_code == 201
    profile = response.json()
    assert len(profile["iccid"]) == 20
    assert luhn.is_valid(profile["iccid"])
    assert profile["kind"] == "esim"
    assert profile["status"] == "allocated"
    assert profile["activationCode"] == f"LPA:1$smdp.simulator.test${profile['matchingId']}"
    assert (await client.get(f"/mno/v1/sims/{profile['iccid']}")).json() == profile


@pytest.mark.parametrize(
    ("iccid", "status", "slug"),
    [
        ("8927011234", 422, "iccid-invalid"),
        ("89270112345678901234567", 422, "iccid-invalid"),
        ("8927011234567890129", 422, "iccid-invalid"),  # wrong check digit
        (UNKNOWN_ICCID, 404, "sim-not-found"),
    ],
)
async def test_looking_up_a_sim_by_a_bad_or_unknown_iccid(
    client: httpx.AsyncClient, iccid: str, status: int, slug: str
):
    assert_problem(await client.get(f"/mno/v1/sims/{iccid}"), status, slug)


# RICA


def rica_body(msisdn: str, person: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"msisdn": msisdn, **person, **changes}
    return {key: value for key, value in body.items() if value is not None}


async def reserved(client: httpx.AsyncClient) -> str:
    msisdn: str = (await client.post("/mno/v1/msisdn-reservations")).json()["msisdn"]
    return msisdn


async def test_rica_registration_with_a_south_african_id(client: httpx.AsyncClient, person):
    msisdn = await reserved(client)
    response = await client.post("/mno/v1/rica-registrations", json=rica_body(msisdn, person))
    assert response.status_code == 201
    registration = response.json()
    assert registration["identityType"] == "sa-id"
    assert registration["identityCountry"] == "ZA"
    assert person["idNumber"] not in response.text  # no personal data comes back
    read = await client.get(f"/mno/v1/rica-registrations/{registration['id']}")
    assert read.json() == registration


async def test_rica_registration_with_a_passport(client: httpx.AsyncClient, person):
    msisdn = await reserved(client)
    body = rica_body(
        msisdn, person, idNumber=None, passportNumber="fn1234567", passportCountry="ZWE"
    )
    response = await client.post("/mno/v1/rica-registrations", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["identityType"] == "passport"
    assert response.json()["identityCountry"] == "ZW"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"idNumber": "80010150"}, "id-number-format"),
        ({"idNumber": "8013015009087"}, "id-number-date-of-birth"),
        ({"idNumber": "8001015009387"}, "id-number-citizenship"),
        ({"idNumber": "8001015009088"}, "id-number-checksum"),
        ({"idNumber": None}, "identity-missing"),
        ({"passportNumber": "FN1234567", "passportCountry": "ZW"}, "identity-ambiguous"),
        (
            {"idNumber": None, "passportNumber": "F1", "passportCountry": "ZW"},
            "passport-number-format",
        ),
        ({"idNumber": None, "passportNumber": "FN1234567"}, "passport-country-missing"),
        (
            {"idNumber": None, "passportNumber": "FN1234567", "passportCountry": "XX"},
            "passport-country-unknown",
        ),
        ({"fullName": "Thandi"}, "full-name-incomplete"),
        ({"residentialAddress": {**ADDRESS, "line1": "  "}}, "address-incomplete"),
        ({"residentialAddress": {**ADDRESS, "postalCode": "80011"}}, "postal-code-invalid"),
    ],
)
async def test_rica_refuses_an_incomplete_registration_with_a_reason(
    client: httpx.AsyncClient, person, changes: dict[str, Any], reason: str
):
    msisdn = await reserved(client)
    body = rica_body(msisdn, person, **changes)
    response = await client.post("/mno/v1/rica-registrations", json=body)
    body = assert_problem(response, 422, "rica-refused")
    assert body["refusalReason"] == reason
    assert body["detail"]


async def test_rica_needs_a_reserved_number(client: httpx.AsyncClient, person):
    free = (await client.get("/mno/v1/msisdns", params={"limit": 1})).json()["items"][0]
    body = rica_body(free["msisdn"], person)
    response = await client.post("/mno/v1/rica-registrations", json=body)
    assert_problem(response, 409, "msisdn-not-held")


async def test_a_missing_address_is_a_validation_error_naming_the_field(
    client: httpx.AsyncClient, person
):
    msisdn = await reserved(client)
    body = rica_body(msisdn, person)
    del body["residentialAddress"]
    response = await client.post("/mno/v1/rica-registrations", json=body)
    problem = assert_problem(response, 422, "validation-error")
    assert [error["field"] for error in problem["errors"]] == ["residentialAddress"]


# Subscriptions


async def test_activation_puts_number_and_sim_into_service(
    client: httpx.AsyncClient, activate: Activate
):
    subscription = await activate()
    assert subscription["status"] == "active"
    assert subscription["simKind"] == "physical"
    sim = (await client.get(f"/mno/v1/sims/{subscription['iccid']}")).json()
    assert sim["status"] == "active"
    assert sim["subscriptionId"] == subscription["id"]
    assigned = (await client.get("/mno/v1/msisdns", params={"status": "assigned"})).json()
    assert [n["msisdn"] for n in assigned["items"]] == [subscription["msisdn"]]


async def test_activation_on_an_esim_profile(client: httpx.AsyncClient, registered_number):
    profile = (await client.post("/mno/v1/esim-profiles")).json()
    response = await client.post(
        "/mno/v1/subscriptions",
        json={
            "msisdn": await registered_number(),
            "iccid": profile["iccid"],
            "tariffCode": "ESIM_5GB",
        },
    )
    assert response.status_code == 201
    assert response.json()["simKind"] == "esim"


async def test_activation_needs_a_reservation_rica_and_a_free_sim(
    client: httpx.AsyncClient, available_sim, registered_number, activate: Activate
):
    iccid = await available_sim()
    unreserved = (await client.get("/mno/v1/msisdns", params={"limit": 1})).json()["items"][0]
    body = {"msisdn": unreserved["msisdn"], "iccid": iccid, "tariffCode": "PREPAID_1GB"}
    assert_problem(
        await client.post("/mno/v1/subscriptions", json=body), 409, "msisdn-not-reserved"
    )

    body["msisdn"] = await reserved(client)
    assert_problem(await client.post("/mno/v1/subscriptions", json=body), 409, "rica-required")

    used = await activate()
    body = {
        "msisdn": await registered_number(),
        "iccid": used["iccid"],
        "tariffCode": "PREPAID_1GB",
    }
    assert_problem(await client.post("/mno/v1/subscriptions", json=body), 409, "sim-unavailable")

    body["iccid"] = "8927019999999999990"
    assert_problem(await client.post("/mno/v1/subscriptions", json=body), 422, "iccid-invalid")

    body["iccid"] = iccid
    body["tariffCode"] = "lower case"
    assert_problem(await client.post("/mno/v1/subscriptions", json=body), 422, "validation-error")


async def test_suspend_resume_and_terminate(client: httpx.AsyncClient, activate: Activate):
    subscription = await activate()
    path = f"/mno/v1/subscriptions/{subscription['id']}"
    suspended = await client.post(f"{path}/suspend", json={"reason": "lost phone"})
    assert suspended.json()["status"] == "suspended"
    assert suspended.json()["suspensionReason"] == "lost phone"
    assert_problem(await client.post(f"{path}/suspend"), 409, "subscription-state")

    resumed = await client.post(f"{path}/resume")
    assert resumed.json()["status"] == "active"
    assert resumed.json()["suspensionReason"] is None

    terminated = await client.post(f"{path}/terminate")
    assert terminated.json()["status"] == "terminated"
    assert_problem(await client.post(f"{path}/resume"), 409, "subscription-state")
    sim = (await client.get(f"/mno/v1/sims/{subscription['iccid']}")).json()
    assert sim["status"] == "retired"
    again = await client.post(
        "/mno/v1/msisdn-reservations", json={"msisdn": subscription["msisdn"]}
    )
    assert again.status_code == 201  # the number went back to the pool


async def test_termination_replayed_answers_as_the_first_time(
    client: httpx.AsyncClient, activate: Activate
):
    subscription = await activate()
    headers = {"Idempotency-Key": "terminate-1"}
    path = f"/mno/v1/subscriptions/{subscription['id']}/terminate"
    first = await client.post(path, headers=headers)
    replay = await client.post(path, headers=headers)
    assert replay.status_code == 200
    assert replay.json() == first.json()
    unkeyed = await client.post(path)
    assert_problem(unkeyed, 409, "subscription-state")


async def test_sim_swap_moves_the_line_to_a_new_sim(
    client: httpx.AsyncClient, activate: Activate, available_sim
):
    subscription = await activate()
    new_iccid = await available_sim()
    path = f"/mno/v1/subscriptions/{subscription['id']}/sim-swap"
    swapped = await client.post(path, json={"iccid": new_iccid})
    assert swapped.status_code == 200
    assert swapped.json()["iccid"] == new_iccid
    assert swapped.json()["msisdn"] == subscription["msisdn"]
    old = (await client.get(f"/mno/v1/sims/{subscription['iccid']}")).json()
    assert old["status"] == "retired"
    back = await client.post(path, json={"iccid": subscription["iccid"]})
    assert_problem(back, 409, "sim-unavailable")


async def test_unknown_subscription_is_404(client: httpx.AsyncClient):
    assert_problem(await client.get("/mno/v1/subscriptions/nope"), 404, "subscription-not-found")
    assert_problem(
        await client.post("/mno/v1/subscriptions/nope/suspend"), 404, "subscription-not-found"
    )


# Usage export


async def read_all(client: httpx.AsyncClient, **params: Any) -> tuple[list[dict[str, Any]], str]:
    records: list[dict[str, Any]] = []
    cursor = params.pop("cursor", None)
    while True:
        query = {**params, "limit": 7, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/mno/v1/usage-records", params=query)).json()
        records += page["records"]
        if not page["records"]:
            return records, page["nextCursor"]
        cursor = page["nextCursor"]


async def test_usage_accrues_on_active_lines_and_is_read_with_a_cursor(
    client: httpx.AsyncClient, activate: Activate
):
    first, second = await activate(), await activate()
    records, cursor = await read_all(client)
    assert records == []

    await client.post("/admin/clock/advance", json={"seconds": 24 * 3600})
    records, cursor = await read_all(client)
    assert len(records) > 10
    assert [r["sequence"] for r in records] == list(range(1, len(records) + 1))
    assert {r["subscriptionId"] for r in records} == {first["id"], second["id"]}
    assert {r["kind"] for r in records} <= {"data", "voice", "sms"}
    for record in records:
        assert (
            record["unit"]
            == {"data": "bytes", "voice": "seconds", "sms": "messages"}[record["kind"]]
        )
        assert record["quantity"] > 0

    # Polling again with the cursor gives nothing twice; new usage comes after it.
    again, same_cursor = await read_all(client, cursor=cursor)
    assert again == []
    assert same_cursor == cursor
    await client.post("/admin/clock/advance", json={"seconds": 24 * 3600})
    newer, _ = await read_all(client, cursor=cursor)
    assert newer
    assert newer[0]["sequence"] == int(cursor) + 1

    only_first, _ = await read_all(client, subscriptionId=first["id"])
    assert only_first
    assert all(r["subscriptionId"] == first["id"] for r in only_first)


async def test_suspended_lines_accrue_no_usage(client: httpx.AsyncClient, activate: Activate):
    subscription = await activate()
    await client.post(f"/mno/v1/subscriptions/{subscription['id']}/suspend")
    await client.post("/admin/clock/advance", json={"seconds": 48 * 3600})
    records, _ = await read_all(client)
    assert records == []


@pytest.mark.parametrize("cursor", ["-1", "abc", "1" * 13])
async def test_a_bad_cursor_is_refused(client: httpx.AsyncClient, cursor: str):
    response = await client.get("/mno/v1/usage-records", params={"cursor": cursor})
    assert_problem(response, 422, "validation-error")


async def test_health_for_canaries(client: httpx.AsyncClient):
    for partner in ("mno", "payments", "billing"):
        assert (await client.get(f"/{partner}/v1/health")).json() == {"status": "ok"}


# Port-ins

PORTED = "+27821234567"  # a mobile number on another network (not in the seeded pool)


async def test_a_port_in_completes_in_its_window_and_the_number_activates(
    client: httpx.AsyncClient, person, available_sim
):
    assert (await client.put("/admin/mno/port-in", json={"delaySeconds": 3600})).status_code == 200
    requested = await client.post("/mno/v1/port-ins", json={"msisdn": PORTED})
    assert requested.status_code == 201, requested.text
    port_in = requested.json()
    assert port_in["status"] == "requested"
    assert port_in["reservationId"] is None
    # Until the number has moved it is not on this network: RICA does not know it.
    refused = await client.post("/mno/v1/rica-registrations", json=rica_body(PORTED, person))
    assert_problem(refused, 404, "msisdn-not-found")

    await client.post("/admin/clock/advance", json={"seconds": 3599})
    assert (await client.get(f"/mno/v1/port-ins/{port_in['id']}")).json()["status"] == "requested"
    await client.post("/admin/clock/advance", json={"seconds": 2})
    completed = (await client.get(f"/mno/v1/port-ins/{port_in['id']}")).json()
    assert completed["status"] == "completed"
    reservation = (
        await client.get(f"/mno/v1/msisdn-reservations/{completed['reservationId']}")
    ).json()
    assert reservation["msisdn"] == PORTED
    assert reservation["status"] == "active"

    registered = await client.post("/mno/v1/rica-registrations", json=rica_body(PORTED, person))
    assert registered.status_code == 201, registered.text
    line = await client.post(
        "/mno/v1/subscriptions",
        json={"msisdn": PORTED, "iccid": await available_sim(), "tariffCode": "PREPAID_1GB"},
    )
    assert line.status_code == 201, line.text
    assert line.json()["msisdn"] == PORTED
    in_use = await client.post(f"/mno/v1/port-ins/{port_in['id']}/cancel")
    assert_problem(in_use, 409, "port-in-in-use")


async def test_the_donor_refuses_a_test_number_and_bad_requests_are_refused(
    client: httpx.AsyncClient,
):
    refused = (await client.post("/mno/v1/port-ins", json={"msisdn": "+27821239999"})).json()
    assert refused["status"] == "rejected"
    assert "donor network refused" in refused["rejectionReason"]

    ours = (await client.get("/mno/v1/msisdns", params={"limit": 1})).json()["items"][0]["msisdn"]
    assert_problem(
        await client.post("/mno/v1/port-ins", json={"msisdn": ours}), 409, "msisdn-on-network"
    )
    assert (await client.post("/mno/v1/port-ins", json={"msisdn": "0821234567"})).status_code == 422
    assert_problem(await client.get("/mno/v1/port-ins/nope"), 404, "port-in-not-found")

    await client.put("/admin/mno/port-in", json={"delaySeconds": 60})
    first = (await client.post("/mno/v1/port-ins", json={"msisdn": PORTED})).json()
    again = await client.post("/mno/v1/port-ins", json={"msisdn": PORTED})
    assert_problem(again, 409, "port-in-open")
    assert again.json()["portInId"] == first["id"]


async def test_a_port_in_is_withdrawn_before_or_after_the_number_moved(client: httpx.AsyncClient):
    await client.put("/admin/mno/port-in", json={"delaySeconds": 60})
    pending = (await client.post("/mno/v1/port-ins", json={"msisdn": PORTED})).json()
    cancelled = await client.post(f"/mno/v1/port-ins/{pending['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    await client.post("/admin/clock/advance", json={"seconds": 120})
    assert (await client.get(f"/mno/v1/port-ins/{pending['id']}")).json()["status"] == "cancelled"

    await client.put("/admin/mno/port-in", json={"delaySeconds": 0})
    headers = {"Idempotency-Key": "port-once"}
    moved = await client.post("/mno/v1/port-ins", json={"msisdn": PORTED}, headers=headers)
    replayed = await client.post("/mno/v1/port-ins", json={"msisdn": PORTED}, headers=headers)
    assert replayed.json() == moved.json()
    assert moved.json()["status"] == "completed"
    given_up = (await client.post(f"/mno/v1/port-ins/{moved.json()['id']}/cancel")).json()
    assert given_up["status"] == "cancelled"
    reservation = (
        await client.get(f"/mno/v1/msisdn-reservations/{given_up['reservationId']}")
    ).json()
    assert reservation["status"] == "released"
