"""The bank's payment API over HTTP: authorise, capture, void, refund, and declines."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mvno.devstack.testing import assert_problem

ACCOUNT = "1234567890"


async def authorise(
    client: httpx.AsyncClient, amount: int = 19_900, account: str = ACCOUNT, **headers: str
) -> httpx.Response:
    return await client.post(
        "/payments/v1/payments",
        json={"accountNumber": account, "amountCents": amount, "reference": "order-1"},
        headers=headers,
    )


async def balances(client: httpx.AsyncClient, account: str = ACCOUNT) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/admin/payments/accounts/{account}")).json()
    return body


async def test_authorise_holds_funds_and_capture_takes_them(client: httpx.AsyncClient):
    opening = (await balances(client))["balanceCents"]
    payment = (await authorise(client)).json()
    assert payment["status"] == "authorised"
    assert payment["amountCents"] == 19_900
    assert payment["currency"] == "ZAR"
    held = await balances(client)
    assert held["heldCents"] == 19_900
    assert held["availableCents"] == opening - 19_900

    captured = await client.post(f"/payments/v1/payments/{payment['id']}/capture")
    assert captured.status_code == 200
    assert captured.json()["status"] == "captured"
    assert captured.json()["capturedCents"] == 19_900
    after = await balances(client)
    assert after["heldCents"] == 0
    assert after["balanceCents"] == opening - 19_900


async def test_partial_capture_releases_the_rest(client: httpx.AsyncClient):
    opening = (await balances(client))["balanceCents"]
    payment = (await authorise(client, 10_000)).json()
    path = f"/payments/v1/payments/{payment['id']}/capture"
    too_much = await client.post(path, json={"amountCents": 10_001})
    assert_problem(too_much, 422, "amount-too-large")
    captured = await client.post(path, json={"amountCents": 6_000})
    assert captured.json()["capturedCents"] == 6_000
    after = await balances(client)
    assert after["balanceCents"] == opening - 6_000
    assert after["heldCents"] == 0


async def test_void_releases_the_hold_and_ends_the_payment(client: httpx.AsyncClient):
    opening = await balances(client)
    payment = (await authorise(client)).json()
    voided = await client.post(f"/payments/v1/payments/{payment['id']}/void")
    assert voided.json()["status"] == "voided"
    assert await balances(client) == opening
    capture = await client.post(f"/payments/v1/payments/{payment['id']}/capture")
    body = assert_problem(capture, 409, "payment-state")
    assert body["paymentStatus"] == "voided"


async def test_refunds_in_parts_up_to_what_was_captured(client: httpx.AsyncClient):
    opening = (await balances(client))["balanceCents"]
    payment = (await authorise(client, 10_000)).json()
    await client.post(f"/payments/v1/payments/{payment['id']}/capture")
    path = f"/payments/v1/payments/{payment['id']}/refunds"
    part = await client.post(path, json={"amountCents": 2_500})
    assert part.status_code == 201
    assert part.json()["status"] == "partially-refunded"
    assert_problem(await client.post(path, json={"amountCents": 7_501}), 422, "amount-too-large")
    rest = await client.post(path)
    assert rest.json()["status"] == "refunded"
    assert [r["amountCents"] for r in rest.json()["refunds"]] == [2_500, 7_500]
    assert (await balances(client))["balanceCents"] == opening
    assert_problem(await client.post(path), 409, "payment-state")


async def test_refund_of_an_uncaptured_payment_is_refused(client: httpx.AsyncClient):
    payment = (await authorise(client)).json()
    response = await client.post(f"/payments/v1/payments/{payment['id']}/refunds")
    assert_problem(response, 409, "payment-state")


async def test_insufficient_funds_test_account_is_declined(client: httpx.AsyncClient):
    response = await authorise(client, account="4000000002")
    body = assert_problem(response, 402, "insufficient-funds")
    assert body["accountNumber"] == "4000000002"


async def test_a_payment_larger_than_the_balance_is_declined(client: httpx.AsyncClient):
    await client.put(f"/admin/payments/accounts/{ACCOUNT}", json={"balanceCents": 5_000})
    assert (await authorise(client, 5_000)).status_code == 201
    assert_problem(await authorise(client, 1), 402, "insufficient-funds")


async def test_blocked_account_is_declined(client: httpx.AsyncClient):
    assert_problem(await authorise(client, account="4000000003"), 402, "account-blocked")


async def test_capture_on_an_account_blocked_since_authorisation_is_declined(
    client: httpx.AsyncClient,
):
    payment = (await authorise(client)).json()
    opening = (await balances(client))["balanceCents"]
    await client.put(
        f"/admin/payments/accounts/{ACCOUNT}", json={"balanceCents": opening, "blocked": True}
    )
    capture = await client.post(f"/payments/v1/payments/{payment['id']}/capture")
    assert_problem(capture, 402, "account-blocked")


async def test_authorisation_replayed_once_per_key_and_a_decline_too(client: httpx.AsyncClient):
    first = await authorise(client, **{"Idempotency-Key": "pay-1"})
    again = await authorise(client, **{"Idempotency-Key": "pay-1"})
    assert again.status_code == 201
    assert again.json() == first.json()
    assert (await balances(client))["heldCents"] == 19_900  # held once

    different = await authorise(client, 100, **{"Idempotency-Key": "pay-1"})
    assert_problem(different, 422, "idempotency-key-reused")

    declined = await authorise(client, account="4000000002", **{"Idempotency-Key": "pay-2"})
    await client.put("/admin/payments/accounts/4000000002", json={"balanceCents": 10**9})
    still = await authorise(client, account="4000000002", **{"Idempotency-Key": "pay-2"})
    assert still.status_code == 402
    assert still.json() == declined.json()
    assert still.headers["idempotent-replayed"] == "true"


async def test_capture_replayed_is_not_a_second_capture(client: httpx.AsyncClient):
    payment = (await authorise(client)).json()
    path = f"/payments/v1/payments/{payment['id']}/capture"
    first = await client.post(path, headers={"Idempotency-Key": "cap-1"})
    again = await client.post(path, headers={"Idempotency-Key": "cap-1"})
    assert again.status_code == first.status_code == 200
    assert again.json() == first.json()
    # The same key on another payment's capture is a different request.
    other = (await authorise(client)).json()
    reused = await client.post(
        f"/payments/v1/payments/{other['id']}/capture", headers={"Idempotency-Key": "cap-1"}
    )
    assert_problem(reused, 422, "idempotency-key-reused")


@pytest.mark.parametrize(
    "body",
    [
        {"accountNumber": "12", "amountCents": 100, "reference": "x"},
        {"accountNumber": ACCOUNT, "amountCents": 0, "reference": "x"},
        {"accountNumber": ACCOUNT, "amountCents": 1.5, "reference": "x"},
        {"accountNumber": ACCOUNT, "amountCents": 100},
        {"accountNumber": ACCOUNT, "amountCents": 100, "reference": "x", "tip": 1},
    ],
)
async def test_malformed_authorisations_are_refused(client: httpx.AsyncClient, body):
    response = await client.post("/payments/v1/payments", json=body)
    assert_problem(response, 422, "validation-error")


async def test_only_rand_is_accepted(client: httpx.AsyncClient):
    response = await client.post(
        "/payments/v1/payments",
        json={"accountNumber": ACCOUNT, "amountCents": 100, "reference": "x", "currency": "USD"},
    )
    assert_problem(response, 422, "currency-unsupported")


async def test_unknown_payment_is_404(client: httpx.AsyncClient):
    assert_problem(await client.get("/payments/v1/payments/nope"), 404, "payment-not-found")
    assert_problem(await client.post("/payments/v1/payments/nope/void"), 404, "payment-not-found")
