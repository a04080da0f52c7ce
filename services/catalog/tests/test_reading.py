"""Reading the catalogue as channels do: filters, pages, field selection and conditional GETs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


async def test_sellable_offerings_for_a_channel_are_launched_ones_offered_there(
    catalog,
):
    response = await catalog.api.get(
        "/productOffering", params={"isSellable": "true", "channel.id": "ussd", "limit": 200}
    )
    assert response.status_code == 200
    offerings = response.json()
    ids = {offering["id"] for offering in offerings}
    assert {"airtime-r10", "data-1gb-30d", "combo-2gb-100min"} <= ids
    # Contracts are sold in branch and by phone only; the 50 GB bundle is still in design.
    assert not ids & {"contract-10gb", "contract-40gb", "data-50gb-30d", "starter-esim"}
    for offering in offerings:
        assert offering["lifecycleStatus"] == "Launched"
        assert offering["isSellable"] is True
        assert "ussd" in {channel["id"] for channel in offering["channel"]}
    assert response.headers["X-Total-Count"] == str(len(offerings))
    assert response.headers["X-Result-Count"] == str(len(offerings))


async def test_filters_by_lifecycle_status_and_category(catalog):
    in_design = (await catalog.api.get("/productOffering?lifecycleStatus=In design")).json()
    assert [offering["id"] for offering in in_design] == ["data-50gb-30d"]
    contracts = (
        await catalog.api.get("/productOffering", params={"category.id": "contracts"})
    ).json()
    assert {offering["id"] for offering in contracts} == {"contract-10gb", "contract-40gb"}
    not_sellable = (await catalog.api.get("/productOffering?isSellable=false")).json()
    assert [offering["id"] for offering in not_sellable] == ["data-50gb-30d"]


async def test_prices_show_vat_separately(catalog):
    offering = (await catalog.api.get("/productOffering/data-5gb-30d")).json()
    [price] = offering["productOfferingPrice"]
    assert price["price"] == {"unit": "ZAR", "value": 245.0}
    assert price["dutyFreeAmount"] == {"unit": "ZAR", "value": 213.04}
    assert price["tax"] == [
        {"taxCategory": "VAT", "taxRate": 15.0, "taxAmount": {"unit": "ZAR", "value": 31.96}}
    ]
    contract = (await catalog.api.get("/productOffering/contract-10gb")).json()
    kinds = {
        (p["priceType"], p.get("unitOfMeasure", {}).get("units"))
        for p in contract["productOfferingPrice"]
    }
    assert kinds == {
        ("recurring", None),
        ("oneTime", None),
        ("usage", "MB"),
        ("usage", "minute"),
        ("usage", "SMS"),
    }


async def test_pages_are_stable_and_counted(catalog):
    everything = (await catalog.api.get("/productOffering", params={"limit": 200})).json()
    total = len(everything)
    assert [o["name"] for o in everything] == sorted(o["name"] for o in everything)
    pages = []
    for offset in range(0, total, 4):
        response = await catalog.api.get("/productOffering", params={"offset": offset, "limit": 4})
        assert response.headers["X-Total-Count"] == str(total)
        assert response.headers["X-Result-Count"] == str(len(response.json()))
        pages += [o["id"] for o in response.json()]
    assert pages == [o["id"] for o in everything]
    beyond = await catalog.api.get("/productOffering", params={"offset": total + 10})
    assert beyond.json() == []
    assert beyond.headers["X-Total-Count"] == str(total)
    assert beyond.headers["X-Result-Count"] == "0"


async def test_fields_selects_members(catalog):
    response = await catalog.api.get(
        "/productOffering", params={"fields": "name,lifecycleStatus", "limit": 3}
    )
    for offering in response.json():
        assert set(offering) == {"id", "href", "@type", "name", "lifecycleStatus"}
    one = (await catalog.api.get("/productOffering/airtime-r10?fields=version")).json()
    assert one == {
        "id": "airtime-r10",
        "href": "/tmf-api/productCatalogManagement/v4/productOffering/airtime-r10",
        "@type": "ProductOffering",
        "version": "1",
    }
    unknown = await catalog.api.get("/productOffering?fields=name,colour")
    assert unknown.status_code == 400
    assert unknown.headers["content-type"] == "application/problem+json"
    assert "colour" in unknown.json()["detail"]


async def test_conditional_get_answers_304_until_the_catalogue_changes(catalog):
    first = await catalog.api.get("/productOffering/data-1gb-30d")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"].startswith("public, max-age=")
    again = await catalog.api.get("/productOffering/data-1gb-30d", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    listing = await catalog.api.get("/productOffering?channel.id=app")
    assert (
        await catalog.api.get(
            "/productOffering?channel.id=app", headers={"If-None-Match": listing.headers["ETag"]}
        )
    ).status_code == 304

    starts = datetime.now(UTC) + timedelta(seconds=1)
    changed = await catalog.api.post(
        "/productOfferingPrice",
        headers=catalog.staff,
        json={
            "productOffering": {"id": "data-1gb-30d"},
            "name": "1 GB for 30 days",
            "priceType": "oneTime",
            "price": {"unit": "ZAR", "value": 79},
            "validFor": {"startDateTime": starts.isoformat()},
        },
    )
    assert changed.status_code == 201, changed.text
    after = await catalog.api.get("/productOffering/data-1gb-30d", headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["ETag"] != etag
    assert 79.0 in {p["price"]["value"] for p in after.json()["productOfferingPrice"]}


async def test_unknown_ids_are_404_problems(catalog):
    for path in (
        "/productOffering/nope",
        "/productOfferingPrice/nope",
        "/category/nope",
        "/productSpecification/nope",
    ):
        response = await catalog.api.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"


async def test_categories_and_specifications_are_listed(catalog):
    categories = await catalog.api.get("/category")
    assert {c["id"] for c in categories.json()} >= {"data-bundles", "airtime", "contracts"}
    specification = (await catalog.api.get("/productSpecification/spec-combo-2gb-100min")).json()
    assert specification["dataMB"] == 2048
    assert specification["voiceMinutes"] == 100
    assert specification["validityDays"] == 30
    assert specification["@type"] == "MobileProductSpecification"
    esim = (await catalog.api.get("/productSpecification/spec-starter-esim")).json()
    assert esim["simKinds"] == ["eSIM"]


async def test_a_write_on_one_replica_drops_the_cached_reads_of_another(catalog):
    import asyncio

    import httpx

    from mvno.catalog.app import create_app
    from mvno.devstack.servers import serve_app

    other_app = create_app(catalog.settings.model_copy(update={"read_cache_seconds": 300}))
    cache = other_app.state.catalog.reader.cache
    async with (
        serve_app(other_app) as other_url,
        httpx.AsyncClient(base_url=other_url + "/tmf-api/productCatalogManagement/v4") as other,
    ):
        for _ in range(50):  # until the other replica listens for changes, so it caches reads
            if cache.listening:
                break
            await asyncio.sleep(0.1)
        assert cache.listening
        first = await other.get("/productOffering/airtime-r50")
        assert cache.get("/tmf-api/productCatalogManagement/v4/productOffering/airtime-r50?")
        changed = await catalog.api.post(
            "/productOfferingPrice",
            headers=catalog.staff,
            json={
                "productOffering": {"id": "airtime-r50"},
                "name": "R50 airtime",
                "priceType": "oneTime",
                "price": {"unit": "ZAR", "value": 49.5},
            },
        )
        assert changed.status_code == 201
        for _ in range(50):
            current = await other.get("/productOffering/airtime-r50")
            if current.headers["ETag"] != first.headers["ETag"]:
                break
            await asyncio.sleep(0.1)
        prices = [p["price"]["value"] for p in current.json()["productOfferingPrice"]]
        assert prices == [49.5], "the other replica still serves the old price from its cache"


async def test_reads_are_gzipped_for_clients_that_accept_it(catalog):
    plain = await catalog.api.get(
        "/productOffering?channel.id=app", headers={"Accept-Encoding": "identity"}
    )
    assert "Content-Encoding" not in plain.headers
    for accept in ("gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8"):
        for _ in range(2):  # rendered, then from the cache
            zipped = await catalog.api.get(
                "/productOffering?channel.id=app", headers={"Accept-Encoding": accept}
            )
            assert zipped.headers["Content-Encoding"] == "gzip"
            assert zipped.headers["Vary"] == "Accept-Encoding"
            assert zipped.json() == plain.json()
            assert int(zipped.headers["Content-Length"]) < len(plain.content) / 3
    refused = await catalog.api.get(
        "/productOffering?channel.id=app", headers={"Accept-Encoding": "gzip;q=0"}
    )
    assert "Content-Encoding" not in refused.headers
