"""Channels place, read and cancel orders: Idempotency-Key, catalogue checks, RICA details sealed."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import uuid

from mvno.common.aws import aws_client
from mvno.common.crypto import FieldCipher, Sealed
from mvno.common.events.catalog import OfferingRetired
from mvno.orders.schemas import OrderCreate

from .conftest import orders_world

VALID_SA_ID = "8001015009087"
RICA = {
    "idType": "sa_id",
    "idNumber": VALID_SA_ID,
    "fullName": "Nomvula Dlamini",
    "address": {"line1": "14 Jan Smuts Avenue", "city": "Johannesburg", "postalCode": "2196"},
}
NEW_ESIM = {
    "channel": [{"id": "app", "role": "salesChannel"}],
    "relatedParty": [{"id": "cust-1001", "role": "Customer"}],
    "customer": RICA,
    "payment": [{"id": "1002003004", "@referredType": "BankAccount"}],
    "productOrderItem": [
        {"id": "1", "action": "add", "productOffering": {"id": "starter-esim"}, "simKind": "eSIM"}
    ],
}


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def place(orders, body=NEW_ESIM, *, headers=None, client="bank-app"):
    return await orders.api.post(
        "/productOrder", json=body, headers={**orders.client(client), **(headers or key())}
    )


async def test_an_order_is_acknowledged_with_its_price_snapshot_and_announced(orders):
    response = await place(orders)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["state"] == "acknowledged"
    assert response.headers["Location"] == order["href"]
    [item] = order["productOrderItem"]
    assert item["productOffering"] == {"id": "starter-esim", "name": "Prepaid eSIM starter pack"}
    assert item["itemPrice"][0]["productOfferingPrice"] == {"id": "p-esim"}
    assert "customer" not in order
    fetched = await orders.api.get(f"/productOrder/{order['id']}", headers=orders.client())
    assert fetched.json() == order
    events = await orders.events(until=2)
    [announced] = [
        e
        for e in events
        if e["type"] == "orders.order.state_changed.v1" and e["subject"] == order["id"]
    ]
    assert announced["data"]["state"] == "acknowledged"
    assert announced["data"]["sequence"] == 1


async def test_idempotency_key_is_required_and_replays_the_first_answer(orders):
    missing = await orders.api.post("/productOrder", json=NEW_ESIM, headers=orders.client())
    assert missing.status_code == 400
    assert missing.json()["type"] == "urn:mvno:problem:idempotency-key-missing"

    same = key()
    first = await place(orders, headers=same)
    again = await place(orders, headers=same)
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    # The replay is the stored answer, sent with the same headers.
    assert again.headers["Location"] == first.headers["Location"] == first.json()["href"]
    assert again.headers["content-type"] == first.headers["content-type"] == "application/json"

    other_body = copy.deepcopy(NEW_ESIM)
    other_body["relatedParty"][0]["id"] = "cust-2002"
    reused = await place(orders, other_body, headers=same)
    assert reused.status_code == 422
    assert reused.json()["type"] == "urn:mvno:problem:idempotency-key-reused"

    # Keys belong to the client: another client's same key is a new order.
    elsewhere = await place(orders, headers=same, client="branch-app")
    assert elsewhere.status_code == 201
    assert elsewhere.json()["id"] != first.json()["id"]


async def test_a_retry_formatted_otherwise_or_fingerprinted_by_an_earlier_release_replays(orders):
    same = key()
    first = await place(orders, headers=same)
    # The same body, members in another order and spaced otherwise.
    reordered = json.dumps(dict(reversed(list(NEW_ESIM.items()))), indent=3).encode()
    again = await orders.api.post(
        "/productOrder",
        content=reordered,
        headers={**orders.client(), **same, "Content-Type": "application/json"},
    )
    assert again.status_code == 201
    assert again.json() == first.json()

    # A key stored by a release that fingerprinted with sorted json.dumps is still replayed.
    earlier = key()
    canonical = json.dumps(
        _validated(NEW_ESIM).model_dump(mode="json"), sort_keys=True, separators=(",", ":")
    )
    placed = await place(orders, headers=earlier)
    connection = await orders.database()
    try:
        await connection.execute(
            "UPDATE idempotency_keys SET request_hash = $1 WHERE key = $2",
            hashlib.sha256(canonical.encode()).hexdigest(),
            earlier["Idempotency-Key"],
        )
    finally:
        await connection.close()
    retried = await place(orders, headers=earlier)
    assert retried.status_code == 201
    assert retried.json() == placed.json()
    other_body = copy.deepcopy(NEW_ESIM)
    other_body["relatedParty"][0]["id"] = "cust-2002"
    assert (await place(orders, other_body, headers=earlier)).status_code == 422


def _validated(body):
    return OrderCreate.model_validate(body)


async def test_fifty_concurrent_requests_with_one_key_place_one_order(orders):
    same = key()
    answers = await asyncio.gather(*(place(orders, headers=same) for _ in range(50)))
    statuses = sorted({answer.status_code for answer in answers})
    assert set(statuses) <= {201, 409}
    ids = {answer.json()["id"] for answer in answers if answer.status_code == 201}
    assert len(ids) == 1
    for answer in answers:
        if answer.status_code == 409:
            assert answer.headers["Retry-After"]
    connection = await orders.database()
    try:
        assert await connection.fetchval("SELECT count(*) FROM orders") == 1
    finally:
        await connection.close()
    # Once the first has finished, a retry gets its answer.
    assert (await place(orders, headers=same)).json()["id"] in ids


async def test_a_retired_offering_is_refused_at_once_and_earlier_orders_still_replay(orders):
    same = key()
    first = await place(orders, headers=same)  # the API replica now holds starter-esim in memory
    assert first.status_code == 201

    await orders.deliver(OfferingRetired(offering_id="starter-esim", version="2"))
    # The copy's commit tells every replica to drop what it held (NOTIFY); allow it to arrive.
    for _ in range(50):
        refused = await place(orders)
        if refused.status_code != 201:
            break
        await asyncio.sleep(0.1)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["pointer"] == "#/body/productOrderItem/0/productOffering/id"

    # A retry of the order accepted before the retirement replays its answer, not a refusal.
    again = await place(orders, headers=same)
    assert again.status_code == 201
    assert again.json() == first.json()
    other_body = copy.deepcopy(NEW_ESIM)
    other_body["relatedParty"][0]["id"] = "cust-2002"
    reused = await place(orders, other_body, headers=same)
    assert reused.json()["type"] == "urn:mvno:problem:idempotency-key-reused"


async def test_a_placed_order_owes_its_channel_hubs_a_webhook_from_the_next_order_on(orders):
    async def owed(order_id: str) -> list[str]:
        connection = await orders.database()
        try:
            rows = await connection.fetch(
                "SELECT subscription_id FROM webhook_deliveries"
                " WHERE payload->'event'->'productOrder'->>'id' = $1",
                order_id,
            )
        finally:
            await connection.close()
        return [row["subscription_id"] for row in rows]

    before = (await place(orders)).json()  # this replica now knows bank-app has no hub
    assert await owed(before["id"]) == []
    hub = await orders.api.post(
        "/hub",
        headers=orders.client(),
        json={
            "callback": "http://127.0.0.1:9/orders",
            "query": "event.productOrder.state=acknowledged",
        },
    )
    assert hub.status_code == 201, hub.text
    # The registration's commit tells every replica (NOTIFY); the next orders are owed to it.
    for _ in range(50):
        after = (await place(orders)).json()
        if await owed(after["id"]):
            break
        await asyncio.sleep(0.1)
    assert await owed(after["id"]) == [hub.json()["id"]]
    elsewhere = (await place(orders, client="branch-app")).json()
    assert await owed(elsewhere["id"]) == []


async def test_a_refused_order_lists_every_problem_and_frees_its_key(orders):
    body = copy.deepcopy(NEW_ESIM)
    body["channel"] = [{"id": "ussd"}]  # the eSIM is sold in the app and on the web only
    body["customer"]["idNumber"] = "8001015009088"  # wrong check digit
    body["productOrderItem"].append(
        {"id": "2", "action": "add", "productOffering": {"id": "data-1gb-30d"}, "simKind": "pSIM"}
    )
    same = key()
    response = await place(orders, body, headers=same)
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:mvno:problem:order-rejected"
    pointers = {error["pointer"] for error in problem["errors"]}
    assert "#/body/productOrderItem/0/productOffering/id" in pointers
    assert "#/body/productOrderItem/1/productOffering/id" in pointers
    assert "#/body/customer/idNumber" in pointers
    assert "8001015009088" not in response.text
    connection = await orders.database()
    try:
        assert await connection.fetchval("SELECT count(*) FROM orders") == 0
        assert await connection.fetchval("SELECT count(*) FROM idempotency_keys") == 0
    finally:
        await connection.close()
    corrected = await place(orders, headers=same)
    assert corrected.status_code == 201


async def test_bad_input_is_a_422_problem(orders):
    cases = []
    no_customer = copy.deepcopy(NEW_ESIM)
    del no_customer["customer"]
    cases.append(no_customer)
    landline = copy.deepcopy(NEW_ESIM)
    landline["productOrderItem"][0]["portInMsisdn"] = "021 480 1111"
    cases.append(landline)
    modify_without_product = copy.deepcopy(NEW_ESIM)
    modify_without_product["productOrderItem"] = [
        {
            "id": "1",
            "action": "modify",
            "change": "bundle",
            "productOffering": {"id": "data-1gb-30d"},
        }
    ]
    cases.append(modify_without_product)
    unknown_line = copy.deepcopy(NEW_ESIM)
    unknown_line["productOrderItem"] = [
        {
            "id": "1",
            "action": "modify",
            "change": "bundle",
            "productOffering": {"id": "data-1gb-30d"},
            "product": {"id": "nope"},
        }
    ]
    cases.append(unknown_line)
    extra_member = dict(NEW_ESIM, colour="blue")
    cases.append(extra_member)
    for body in cases:
        response = await place(orders, body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert VALID_SA_ID not in response.text


async def test_a_ported_number_is_normalised_to_e164(orders):
    body = copy.deepcopy(NEW_ESIM)
    body["productOrderItem"][0]["portInMsisdn"] = "082 123 4567"
    assert (await place(orders, body)).status_code == 201
    connection = await orders.database()
    try:
        assert await connection.fetchval("SELECT port_in_msisdn FROM order_items") == "+27821234567"
    finally:
        await connection.close()


async def test_personal_data_is_sealed_in_the_database_and_absent_from_events(orders, capsys):
    order = (await place(orders)).json()
    events = await orders.events()
    connection = await orders.database()
    try:
        row = await connection.fetchrow("SELECT * FROM orders WHERE id = $1", order["id"])
        dump = await connection.fetchval(
            "SELECT string_agg(t::text, ' ') FROM (SELECT * FROM orders) t"
        )
        items = await connection.fetchval(
            "SELECT string_agg(t::text, ' ') FROM (SELECT * FROM order_items) t"
        )
    finally:
        await connection.close()
    assert row["personal_data_key"]
    captured = capsys.readouterr()
    for secret in (VALID_SA_ID, "Nomvula", "Dlamini", "Jan Smuts", "1002003004"):
        assert secret not in dump
        assert secret not in items
        assert secret not in str(events)
        assert secret not in captured.out + captured.err

    # Sealed, not lost: the KMS key opens it again, bound to this order.
    stored = row["personal_data"]
    stored = json.loads(stored) if isinstance(stored, str) else stored
    async with aws_client(orders.settings, "kms") as kms:
        opened = await FieldCipher(kms, orders.settings.personal_data_kms_key).open(
            f"orders:{order['id']}",
            Sealed(row["personal_data_key"], {k: base64.b64decode(v) for k, v in stored.items()}),
        )
    assert opened["id_number"] == VALID_SA_ID
    assert opened["full_name"] == "Nomvula Dlamini"
    assert set(stored) == {"id_type", "id_number", "full_name", "address", "payment_account"}
    assert opened["payment_account"] == "1002003004"


async def test_callers_need_a_token_and_read_only_their_orders(orders):
    assert (await orders.api.post("/productOrder", json=NEW_ESIM, headers=key())).status_code == 401
    reader_only = await orders.api.post(
        "/productOrder", json=NEW_ESIM, headers={**orders.client(scopes=("orders:read",)), **key()}
    )
    assert reader_only.status_code == 403
    mine = (await place(orders)).json()
    other_client = await orders.api.get(
        f"/productOrder/{mine['id']}", headers=orders.client("ussd-gateway")
    )
    assert other_client.status_code == 404
    staff = await orders.api.get(
        f"/productOrder/{mine['id']}", headers=orders.client("portal-api", scopes=("orders:read",))
    )
    assert staff.status_code == 200
    no_scope = await orders.api.get(
        f"/productOrder/{mine['id']}", headers=orders.client(scopes=("portal",))
    )
    assert no_scope.status_code == 403


async def test_orders_are_listed_with_filters_pages_and_fields(orders):
    for customer in ("cust-1", "cust-1", "cust-2"):
        body = copy.deepcopy(NEW_ESIM)
        body["relatedParty"][0]["id"] = customer
        assert (await place(orders, body)).status_code == 201
    page = await orders.api.get(
        "/productOrder", params={"relatedParty.id": "cust-1", "limit": 1}, headers=orders.client()
    )
    assert page.headers["X-Total-Count"] == "2"
    assert page.headers["X-Result-Count"] == "1"
    everything = await orders.api.get(
        "/productOrder", params={"state": "acknowledged"}, headers=orders.client()
    )
    assert len(everything.json()) == 3
    slim = await orders.api.get(
        "/productOrder", params={"fields": "state"}, headers=orders.client()
    )
    assert all(set(o) == {"id", "href", "@type", "state"} for o in slim.json())
    assert (
        await orders.api.get("/productOrder", params={"fields": "secret"}, headers=orders.client())
    ).status_code == 400
    nothing = await orders.api.get(
        "/productOrder", params={"orderDate.lt": "2020-01-01T00:00:00Z"}, headers=orders.client()
    )
    assert nothing.json() == []
    assert nothing.headers["X-Total-Count"] == "0"


async def test_an_acknowledged_order_can_be_cancelled_once(orders):
    order = (await place(orders)).json()
    cancel = {"productOrder": {"id": order["id"]}, "cancellationReason": "changed my mind"}
    first = await orders.api.post("/cancelProductOrder", json=cancel, headers=orders.client())
    assert first.status_code == 201
    assert first.json()["productOrder"]["id"] == order["id"]
    assert (await orders.api.get(f"/productOrder/{order['id']}", headers=orders.client())).json()[
        "state"
    ] == "cancelled"
    again = await orders.api.post("/cancelProductOrder", json=cancel, headers=orders.client())
    assert again.status_code == 409
    stranger = await orders.api.post(
        "/cancelProductOrder", json=cancel, headers=orders.client("ussd-gateway")
    )
    assert stranger.status_code == 404


async def test_a_paused_intake_refuses_new_orders_and_still_serves_reads(
    orders_template, clean_aws, dev_issuer, copy_database
):
    async with orders_world(
        orders_template, clean_aws, dev_issuer, copy_database, intake_paused=True
    ) as paused:
        refused = await place(paused)
        listed = await paused.api.get("/productOrder", headers=paused.client())
    assert refused.status_code == 503
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith(":intake-paused")
    assert refused.headers["Retry-After"] == "300"
    assert listed.status_code == 200
