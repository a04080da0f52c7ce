"""Staff change the catalogue: lifecycle, versioned prices, the audit trail and the bus events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

NEW_OFFERING = {
    "name": "Weekend 3 GB",
    "description": "3 GB for Saturday and Sunday",
    "category": [{"id": "data-bundles"}],
    "productSpecification": {"id": "spec-data-5gb-30d"},
    "channel": [{"id": "app"}, {"id": "web"}],
    "validFor": {"startDateTime": "2026-01-01T00:00:00+02:00"},
}


def price_body(offering_id: str, amount: float, starts: datetime | None = None) -> dict:
    body = {
        "productOffering": {"id": offering_id},
        "name": "Bundle price",
        "priceType": "oneTime",
        "price": {"unit": "ZAR", "value": amount},
    }
    if starts is not None:
        body["validFor"] = {"startDateTime": starts.isoformat()}
    return body


async def create_offering(catalog) -> str:
    response = await catalog.api.post("/productOffering", headers=catalog.staff, json=NEW_OFFERING)
    assert response.status_code == 201, response.text
    assert response.headers["Location"].endswith("/productOffering/" + response.json()["id"])
    assert response.json()["lifecycleStatus"] == "In design"
    return response.json()["id"]


async def move(catalog, offering_id: str, status: str):
    return await catalog.api.patch(
        f"/productOffering/{offering_id}",
        headers={**catalog.staff, "Content-Type": "application/merge-patch+json"},
        json={"lifecycleStatus": status},
    )


async def test_lifecycle_moves_one_step_forward_at_a_time(catalog):
    offering_id = await create_offering(catalog)
    unchanged = await move(catalog, offering_id, "In design")
    assert unchanged.status_code == 200
    assert unchanged.json()["version"] == "1"
    for status in ("Launched", "Retired", "Obsolete"):
        refused = await move(catalog, offering_id, status)
        assert refused.status_code == 409, status
        assert refused.json()["type"] == "urn:mvno:problem:invalid-transition"
    assert (await move(catalog, offering_id, "Active")).status_code == 200

    no_price = await move(catalog, offering_id, "Launched")
    assert no_price.status_code == 409
    assert "price" in no_price.json()["detail"]
    assert (
        await catalog.api.post(
            "/productOfferingPrice", headers=catalog.staff, json=price_body(offering_id, 59)
        )
    ).status_code == 201
    launched = await move(catalog, offering_id, "Launched")
    assert launched.status_code == 200
    assert launched.json()["isSellable"] is True

    frozen = await catalog.api.patch(
        f"/productOffering/{offering_id}", headers=catalog.staff, json={"name": "Weekend 4 GB"}
    )
    assert frozen.status_code == 409
    assert frozen.json()["type"] == "urn:mvno:problem:not-editable"
    assert (await move(catalog, offering_id, "Active")).status_code == 409

    assert (await move(catalog, offering_id, "Retired")).status_code == 200
    sellable = await catalog.api.get("/productOffering?isSellable=true&channel.id=app&limit=200")
    assert offering_id not in {o["id"] for o in sellable.json()}
    assert (await move(catalog, offering_id, "Obsolete")).status_code == 200
    assert (await move(catalog, offering_id, "Retired")).status_code == 409
    current = await catalog.api.get(f"/productOffering/{offering_id}")
    assert current.json()["lifecycleStatus"] == "Obsolete"


async def test_terms_can_change_before_launch(catalog):
    offering_id = await create_offering(catalog)
    response = await catalog.api.patch(
        f"/productOffering/{offering_id}",
        headers=catalog.staff,
        json={"name": "Weekend 4 GB", "channel": [{"id": "ussd"}]},
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Weekend 4 GB"
    assert [c["id"] for c in response.json()["channel"]] == ["ussd"]
    assert response.json()["version"] == "2"


async def test_a_price_change_closes_the_old_price_and_the_past_stays_answerable(catalog):
    before = (await catalog.api.get("/productOffering/data-5gb-30d")).json()
    [old] = before["productOfferingPrice"]
    sold_at = datetime.now(UTC)

    changed = await catalog.api.post(
        "/productOfferingPrice", headers=catalog.staff, json=price_body("data-5gb-30d", 229)
    )
    assert changed.status_code == 201, changed.text
    new = changed.json()
    assert new["price"]["value"] == 229.0

    closed = (await catalog.api.get(f"/productOfferingPrice/{old['id']}")).json()
    assert closed["validFor"]["endDateTime"] == new["validFor"]["startDateTime"]
    assert closed["price"]["value"] == 245.0

    at_sale = await catalog.api.get(
        "/productOfferingPrice",
        params={"productOffering.id": "data-5gb-30d", "validAt": sold_at.isoformat()},
    )
    assert [p["id"] for p in at_sale.json()] == [old["id"]]
    now = await catalog.api.get(
        "/productOfferingPrice",
        params={"productOffering.id": "data-5gb-30d", "validAt": datetime.now(UTC).isoformat()},
    )
    assert [p["id"] for p in now.json()] == [new["id"]]
    history = await catalog.api.get("/productOfferingPrice?productOffering.id=data-5gb-30d")
    assert history.headers["X-Total-Count"] == "2"
    offering = (await catalog.api.get("/productOffering/data-5gb-30d")).json()
    assert [p["id"] for p in offering["productOfferingPrice"]] == [new["id"]]


async def test_prices_are_never_edited_and_never_start_in_the_past(catalog):
    [price] = (await catalog.api.get("/productOffering/data-1gb-30d")).json()[
        "productOfferingPrice"
    ]
    for method in ("PATCH", "PUT", "DELETE"):
        response = await catalog.api.request(
            method, f"/productOfferingPrice/{price['id']}", headers=catalog.staff, json={}
        )
        assert response.status_code == 405, method
    past = await catalog.api.post(
        "/productOfferingPrice",
        headers=catalog.staff,
        json=price_body("data-1gb-30d", 80, datetime.now(UTC) - timedelta(days=1)),
    )
    assert past.status_code == 409
    assert past.json()["type"] == "urn:mvno:problem:price-conflict"
    later = datetime.now(UTC) + timedelta(days=7)
    assert (
        await catalog.api.post(
            "/productOfferingPrice",
            headers=catalog.staff,
            json=price_body("data-1gb-30d", 80, later),
        )
    ).status_code == 201
    earlier_than_latest = await catalog.api.post(
        "/productOfferingPrice",
        headers=catalog.staff,
        json=price_body("data-1gb-30d", 82, later - timedelta(days=1)),
    )
    assert earlier_than_latest.status_code == 409
    # The current price stays in force until the future one starts; both are shown.
    offering = (await catalog.api.get("/productOffering/data-1gb-30d")).json()
    assert [p["price"]["value"] for p in offering["productOfferingPrice"]] == [85.0, 80.0]


async def test_writes_need_a_staff_token_and_leave_an_audit_record(catalog):
    anonymous = await catalog.api.post("/productOffering", json=NEW_OFFERING)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.headers["content-type"] == "application/problem+json"
    customer = await catalog.api.post(
        "/productOffering", headers=catalog.customer, json=NEW_OFFERING
    )
    assert customer.status_code == 403
    assert (await catalog.api.get("/auditRecord", headers=catalog.customer)).status_code == 403
    assert (await catalog.api.get("/auditRecord")).status_code == 401
    garbage = await catalog.api.post(
        "/productOffering", headers={"Authorization": "Bearer not-a-jwt"}, json=NEW_OFFERING
    )
    assert garbage.status_code == 401

    offering_id = await create_offering(catalog)
    await move(catalog, offering_id, "Active")
    audit = await catalog.api.get(
        "/auditRecord",
        headers=catalog.staff,
        params={"entityType": "productOffering", "entityId": offering_id},
    )
    assert audit.status_code == 200
    records = audit.json()
    assert [r["action"] for r in records] == ["offering.lifecycle_changed", "offering.created"]
    assert {r["actor"] for r in records} == {"staff-thandi"}
    assert records[0]["changes"] == {"lifecycleStatus": {"from": "In design", "to": "Active"}}
    assert records[1]["changes"]["name"] == "Weekend 3 GB"
    assert all(r["requestId"] for r in records)


async def test_a_refused_write_changes_nothing(catalog):
    before = await catalog.api.get("/auditRecord", headers=catalog.staff)
    bad = dict(NEW_OFFERING, productSpecification={"id": "no-such-spec"})
    response = await catalog.api.post("/productOffering", headers=catalog.staff, json=bad)
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "#/body/productSpecification/id"
    after = await catalog.api.get("/auditRecord", headers=catalog.staff)
    assert after.headers["X-Total-Count"] == before.headers["X-Total-Count"]
    listed = await catalog.api.get("/productOffering?limit=200")
    assert "Weekend 3 GB" not in {o["name"] for o in listed.json()}


async def test_bad_input_is_a_422_problem_naming_the_field(catalog):
    cases = [
        ({**NEW_OFFERING, "channel": []}, "channel"),
        ({**NEW_OFFERING, "channel": [{"id": "fax"}]}, "channel"),
        ({**NEW_OFFERING, "colour": "blue"}, "colour"),
        ({k: v for k, v in NEW_OFFERING.items() if k != "name"}, "name"),
        ({**NEW_OFFERING, "validFor": {"startDateTime": "2026-01-01T00:00:00"}}, "validFor"),
        (
            {
                **NEW_OFFERING,
                "validFor": {
                    "startDateTime": "2026-02-01T00:00:00Z",
                    "endDateTime": "2026-01-01T00:00:00Z",
                },
            },
            "validFor",
        ),
    ]
    for body, field in cases:
        response = await catalog.api.post("/productOffering", headers=catalog.staff, json=body)
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in response.text
    for amount in (-1, 10.001, "ten"):
        response = await catalog.api.post(
            "/productOfferingPrice", headers=catalog.staff, json=price_body("data-1gb-30d", amount)
        )
        assert response.status_code == 422, amount
    usage_without_unit = dict(price_body("data-1gb-30d", 1), priceType="usage")
    response = await catalog.api.post(
        "/productOfferingPrice", headers=catalog.staff, json=usage_without_unit
    )
    assert response.status_code == 422
    unknown_offering = await catalog.api.post(
        "/productOfferingPrice", headers=catalog.staff, json=price_body("nope", 1)
    )
    assert unknown_offering.status_code == 422


async def test_launch_retire_and_price_change_are_published_on_the_bus(catalog):
    offering_id = await create_offering(catalog)
    await move(catalog, offering_id, "Active")
    await catalog.api.post(
        "/productOfferingPrice", headers=catalog.staff, json=price_body(offering_id, 59)
    )
    assert (await move(catalog, offering_id, "Launched")).status_code == 200
    [launched] = await catalog.events_of("catalog.offering.launched.v1", offering_id)
    assert launched["source"] == "urn:mvno:catalog"
    data = launched["data"]
    assert data["channels"] == ["app", "web"]
    assert data["product_kind"] == "data_bundle"
    assert data["allowance"] == {"data_mb": 5120, "voice_minutes": 0, "sms": 0, "validity_days": 30}
    assert [p["tax_included_amount"]["amount"] for p in data["prices"]] == ["59.00"]

    changed = await catalog.api.post(
        "/productOfferingPrice", headers=catalog.staff, json=price_body(offering_id, 49)
    )
    [price_event] = await catalog.events_of("catalog.price.changed.v1", offering_id)
    assert price_event["data"]["price"]["price_id"] == changed.json()["id"]
    assert price_event["data"]["price"]["tax_included_amount"]["amount"] == "49.00"
    assert price_event["data"]["price"]["duty_free_amount"]["amount"] == "42.61"
    assert price_event["data"]["replaces_price_id"] == data["prices"][0]["price_id"]

    await move(catalog, offering_id, "Retired")
    [retired] = await catalog.events_of("catalog.offering.retired.v1", offering_id)
    assert retired["data"]["offering_id"] == offering_id


async def test_categories_and_specifications_are_staff_managed(catalog):
    created = await catalog.api.post(
        "/category",
        headers=catalog.staff,
        json={"name": "Roaming", "parentId": "data-bundles"},
    )
    assert created.status_code == 201
    category_id = created.json()["id"]
    assert created.json()["isRoot"] is False
    cycle = await catalog.api.patch(
        "/category/data-bundles", headers=catalog.staff, json={"parentId": category_id}
    )
    assert cycle.status_code == 422
    spec = await catalog.api.post(
        "/productSpecification",
        headers=catalog.staff,
        json={
            "name": "Roaming 1 GB",
            "productKind": "data_bundle",
            "paymentType": "prepaid",
            "dataMB": 1024,
            "validityDays": 7,
        },
    )
    assert spec.status_code == 201, spec.text
    renamed = await catalog.api.patch(
        f"/productSpecification/{spec.json()['id']}",
        headers=catalog.staff,
        json={"name": "Roaming 1 GB, 7 days"},
    )
    assert renamed.status_code == 200
    in_use = await catalog.api.patch(
        "/productSpecification/spec-data-1gb-30d", headers=catalog.staff, json={"dataMB": 2048}
    )
    assert in_use.status_code == 409
    no_validity = await catalog.api.post(
        "/productSpecification",
        headers=catalog.staff,
        json={"name": "x", "productKind": "data_bundle", "paymentType": "prepaid", "dataMB": 1},
    )
    assert no_validity.status_code == 422
