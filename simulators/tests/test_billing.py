"""The billing platform over HTTP: accounts, subscriptions, tariffs, invoices, reconciliation."""

from __future__ import annotations

from typing import Any

import httpx

from mvno.devstack.testing import assert_problem


async def open_account(client: httpx.AsyncClient, customer: str = "cust-1") -> dict[str, Any]:
    response = await client.post(
        "/billing/v1/accounts", json={"customerRef": customer, "name": "Thandi Mokoena"}
    )
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()
    return account


async def bill(
    client: httpx.AsyncClient, account_id: str, msisdn: str, charge: int = 9_900
) -> dict[str, Any]:
    response = await client.post(
        f"/billing/v1/accounts/{account_id}/subscriptions",
        json={"msisdn": msisdn, "tariffCode": "CONTRACT_10GB", "monthlyChargeCents": charge},
    )
    assert response.status_code == 201, response.text
    subscription: dict[str, Any] = response.json()
    return subscription


async def test_account_with_a_subscription(client: httpx.AsyncClient):
    account = await open_account(client)
    assert account["status"] == "open"
    assert account["currency"] == "ZAR"
    subscription = await bill(client, account["id"], "+27821234567")
    assert subscription["status"] == "active"
    read = (await client.get(f"/billing/v1/accounts/{account['id']}")).json()
    assert [s["id"] for s in read["subscriptions"]] == [subscription["id"]]


async def test_one_open_account_per_customer_and_one_billed_line_per_number(
    client: httpx.AsyncClient,
):
    account = await open_account(client)
    twice = await client.post(
        "/billing/v1/accounts", json={"customerRef": "cust-1", "name": "Thandi Mokoena"}
    )
    assert assert_problem(twice, 409, "account-exists")["accountId"] == account["id"]

    subscription = await bill(client, account["id"], "+27821234567")
    other = await open_account(client, "cust-2")
    again = await client.post(
        f"/billing/v1/accounts/{other['id']}/subscriptions",
        json={"msisdn": "+27821234567", "tariffCode": "X1", "monthlyChargeCents": 1},
    )
    assert assert_problem(again, 409, "msisdn-billed")["subscriptionId"] == subscription["id"]


async def test_account_creation_replayed_with_its_key(client: httpx.AsyncClient):
    body = {"customerRef": "cust-9", "name": "Sipho Dlamini"}
    headers = {"Idempotency-Key": "acct-9"}
    first = await client.post("/billing/v1/accounts", json=body, headers=headers)
    again = await client.post("/billing/v1/accounts", json=body, headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()


async def test_tariff_change_keeps_the_history(client: httpx.AsyncClient):
    account = await open_account(client)
    subscription = await bill(client, account["id"], "+27821234567")
    changed = await client.post(
        f"/billing/v1/subscriptions/{subscription['id']}/tariff",
        json={"tariffCode": "CONTRACT_20GB", "monthlyChargeCents": 19_900},
    )
    assert changed.status_code == 200
    body = changed.json()
    assert body["tariffCode"] == "CONTRACT_20GB"
    assert body["monthlyChargeCents"] == 19_900
    assert [p["tariffCode"] for p in body["tariffHistory"]] == ["CONTRACT_10GB", "CONTRACT_20GB"]


async def test_closing_an_account_ends_its_subscriptions(client: httpx.AsyncClient):
    account = await open_account(client)
    subscription = await bill(client, account["id"], "+27821234567")
    closed = await client.post(f"/billing/v1/accounts/{account['id']}/close")
    assert closed.json()["status"] == "closed"
    assert closed.json()["subscriptions"][0]["status"] == "ended"
    tariff = await client.post(
        f"/billing/v1/subscriptions/{subscription['id']}/tariff",
        json={"tariffCode": "X1", "monthlyChargeCents": 1},
    )
    assert_problem(tariff, 409, "subscription-ended")
    assert_problem(
        await client.post(f"/billing/v1/accounts/{account['id']}/close"), 409, "account-closed"
    )
    # The customer may open a new account, and the number may be billed again.
    new = await open_account(client)
    await bill(client, new["id"], "+27821234567")


async def test_bill_run_invoices_active_subscriptions_with_vat(client: httpx.AsyncClient):
    account = await open_account(client)
    first = await bill(client, account["id"], "+27821234567", charge=9_999)
    second = await bill(client, account["id"], "+27831234567", charge=5_000)
    await client.post(f"/billing/v1/subscriptions/{second['id']}/end")
    await open_account(client, "cust-without-lines")

    run = await client.post("/admin/billing/bill-runs", json={"period": "2026-11"})
    assert run.status_code == 201
    [invoice] = run.json()["items"]
    assert invoice["period"] == "2026-11"
    assert [line["subscriptionId"] for line in invoice["lines"]] == [first["id"]]
    assert invoice["subtotalCents"] == 9_999
    assert invoice["vatCents"] == 1_500  # 1499.85 rounded half up
    assert invoice["totalCents"] == 11_499

    invoices = (await client.get(f"/billing/v1/accounts/{account['id']}/invoices")).json()
    assert invoices["items"] == [invoice]
    assert (await client.get(f"/billing/v1/invoices/{invoice['id']}")).json() == invoice
    rerun = await client.post("/admin/billing/bill-runs", json={"period": "2026-11"})
    assert rerun.json()["items"] == []  # once per account and period


async def test_accounts_listed_page_by_page_for_reconciliation(client: httpx.AsyncClient):
    created = [(await open_account(client, f"cust-{n}"))["id"] for n in range(5)]
    await client.post(f"/billing/v1/accounts/{created[1]}/close")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/billing/v1/accounts", params=params)).json()
        seen += [account["id"] for account in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == created
    open_only = (await client.get("/billing/v1/accounts", params={"status": "open"})).json()
    assert [a["id"] for a in open_only["items"]] == [created[0], *created[2:]]
    bad = await client.get("/billing/v1/accounts", params={"cursor": "nope"})
    assert_problem(bad, 404, "cursor-not-found")


async def test_unknown_billing_resources_are_404(client: httpx.AsyncClient):
    assert_problem(await client.get("/billing/v1/accounts/nope"), 404, "account-not-found")
    assert_problem(await client.get("/billing/v1/invoices/nope"), 404, "invoice-not-found")
    assert_problem(
        await client.post("/billing/v1/subscriptions/nope/end"), 404, "subscription-not-found"
    )
