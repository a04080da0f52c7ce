"""A partner's product feed is applied as a whole, refused as a whole, and idempotent."""

from __future__ import annotations

import copy

from mvno.catalog.seed import seed, seed_document

PARTNER_FEED = {
    "partner": "roam-partner",
    "categories": [{"id": "roaming", "name": "Roaming", "parentId": "data-bundles"}],
    "productSpecifications": [
        {
            "id": "spec-roam-1gb-7d",
            "name": "Roaming 1 GB, 7 days",
            "productKind": "data_bundle",
            "paymentType": "prepaid",
            "dataMB": 1024,
            "validityDays": 7,
        }
    ],
    "productOfferings": [
        {
            "id": "roam-1gb-7d",
            "name": "Roaming 1 GB",
            "categoryId": "roaming",
            "productSpecificationId": "spec-roam-1gb-7d",
            "channel": ["app", "web"],
            "validFor": {"startDateTime": "2026-01-01T00:00:00Z"},
            "prices": [{"name": "Roaming 1 GB", "priceType": "oneTime", "amount": 199}],
        },
        {
            "id": "roam-bundle",
            "name": "Roaming pack",
            "categoryId": "roaming",
            "productSpecificationId": "spec-roam-1gb-7d",
            "channel": ["app"],
            "validFor": {"startDateTime": "2026-01-01T00:00:00Z"},
            "bundledProductOfferingIds": ["roam-1gb-7d", "data-1gb-30d"],
            "prices": [{"name": "Roaming pack", "priceType": "oneTime", "amount": 249}],
            "lifecycleStatus": "Active",
        },
    ],
}


async def audit_count(catalog) -> int:
    response = await catalog.api.get("/auditRecord", headers=catalog.staff, params={"limit": 1})
    return int(response.headers["X-Total-Count"])


async def test_a_good_feed_is_applied_and_a_second_upload_changes_nothing(catalog):
    first = await catalog.api.post("/feedImport", headers=catalog.staff, json=PARTNER_FEED)
    assert first.status_code == 200, first.text
    result = first.json()
    assert result["created"] == {
        "category": ["roaming"],
        "productSpecification": ["spec-roam-1gb-7d"],
        "productOffering": ["roam-1gb-7d", "roam-bundle"],
    }
    assert len(result["pricesOpened"]) == 2
    roaming = (await catalog.api.get("/productOffering/roam-1gb-7d")).json()
    assert roaming["lifecycleStatus"] == "Launched"
    bundle = (await catalog.api.get("/productOffering/roam-bundle")).json()
    assert bundle["lifecycleStatus"] == "Active"
    assert bundle["isBundle"] is True
    assert [b["id"] for b in bundle["bundledProductOffering"]] == ["roam-1gb-7d", "data-1gb-30d"]

    second = await catalog.api.post("/feedImport", headers=catalog.staff, json=PARTNER_FEED)
    assert second.status_code == 200
    again = second.json()
    assert again["created"] == {}
    assert again["updated"] == {}
    assert again["pricesOpened"] == []
    assert again["transitions"] == []
    assert sorted(again["unchanged"]["productOffering"]) == ["roam-1gb-7d", "roam-bundle"]
    prices = await catalog.api.get("/productOfferingPrice?productOffering.id=roam-1gb-7d")
    assert prices.headers["X-Total-Count"] == "1"


async def test_a_feed_changes_prices_by_versioning_them(catalog):
    await catalog.api.post("/feedImport", headers=catalog.staff, json=PARTNER_FEED)
    cheaper = copy.deepcopy(PARTNER_FEED)
    cheaper["productOfferings"][0]["prices"][0]["amount"] = 179
    result = (await catalog.api.post("/feedImport", headers=catalog.staff, json=cheaper)).json()
    assert result["updated"] == {"productOffering": ["roam-1gb-7d"]}
    history = (await catalog.api.get("/productOfferingPrice?productOffering.id=roam-1gb-7d")).json()
    assert [p["price"]["value"] for p in history] == [199.0, 179.0]
    assert history[0]["validFor"]["endDateTime"] == history[1]["validFor"]["startDateTime"]


async def test_a_bad_feed_is_refused_with_every_problem_and_changes_nothing(catalog):
    before = await audit_count(catalog)
    bad = copy.deepcopy(PARTNER_FEED)
    bad["categories"][0]["parentId"] = "no-such-category"
    bad["productOfferings"][0]["productSpecificationId"] = "no-such-spec"
    bad["productOfferings"][1]["bundledProductOfferingIds"] = ["roam-1gb-7d", "ghost"]
    bad["productOfferings"].append(
        {
            "id": "data-1gb-30d",  # launched in the seed: the lifecycle cannot go back
            "name": "1 GB data bundle",
            "categoryId": "data-bundles",
            "productSpecificationId": "spec-data-1gb-30d",
            "channel": ["app", "web", "ussd", "call_centre"],
            "validFor": {"startDateTime": "2026-01-01T00:00:00+02:00"},
            "lifecycleStatus": "In design",
        }
    )
    response = await catalog.api.post("/feedImport", headers=catalog.staff, json=bad)
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:mvno:problem:invalid-feed"
    pointers = [error["pointer"] for error in problem["errors"]]
    assert any(p.startswith("#/body/categories/0") for p in pointers), pointers
    assert any(p.startswith("#/body/productOfferings/0") for p in pointers), pointers
    assert any(p.startswith("#/body/productOfferings/1") for p in pointers), pointers
    assert any(p.startswith("#/body/productOfferings/2") for p in pointers), pointers
    assert len(problem["errors"]) >= 4
    assert await audit_count(catalog) == before
    assert (await catalog.api.get("/category/roaming")).status_code == 404
    assert (await catalog.api.get("/productSpecification/spec-roam-1gb-7d")).status_code == 404
    assert (await catalog.api.get("/productOffering/roam-bundle")).status_code == 404


async def test_a_malformed_feed_lists_every_field_error(catalog):
    bad = copy.deepcopy(PARTNER_FEED)
    bad["productOfferings"][0]["prices"][0]["amount"] = -5
    bad["productOfferings"][1]["channel"] = ["carrier-pigeon"]
    del bad["productSpecifications"][0]["productKind"]
    response = await catalog.api.post("/feedImport", headers=catalog.staff, json=bad)
    assert response.status_code == 422
    assert len(response.json()["errors"]) >= 3
    customer = await catalog.api.post("/feedImport", headers=catalog.customer, json=PARTNER_FEED)
    assert customer.status_code == 403


async def test_seeding_again_changes_nothing(catalog):
    outcome = await seed(catalog.settings)
    assert outcome.created == {}
    assert outcome.updated == {}
    assert outcome.prices_opened == []
    document = seed_document()
    assert len(outcome.unchanged["productOffering"]) == len(document.product_offerings)
