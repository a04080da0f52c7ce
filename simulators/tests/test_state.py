"""State: seeded and repeatable, reset through the admin endpoint, kept in a file between runs."""

from __future__ import annotations

import httpx

from mvno.simulators.app import create_app


async def first_reservation(client: httpx.AsyncClient) -> str:
    msisdn: str = (await client.post("/mno/v1/msisdn-reservations")).json()["msisdn"]
    return msisdn


async def test_reset_gives_the_same_numbers_for_the_same_seed(client: httpx.AsyncClient):
    first = await first_reservation(client)
    await client.post(
        "/payments/v1/payments",
        json={"accountNumber": "123456", "amountCents": 5, "reference": "r"},
    )
    reset = await client.post("/admin/reset")
    assert reset.json()["seed"] == 42
    assert await first_reservation(client) == first
    assert (await client.get("/admin/payments/accounts/123456")).json()["heldCents"] == 0

    await client.post("/admin/reset", json={"seed": 43})
    assert await first_reservation(client) != first
    await client.post("/admin/reset", json={"seed": 42})
    assert await first_reservation(client) == first


async def test_reset_forgets_idempotency_keys_and_turns_back_the_clock(client: httpx.AsyncClient):
    headers = {"Idempotency-Key": "k"}
    await client.post("/mno/v1/msisdn-reservations", headers=headers)
    await client.post("/admin/clock/advance", json={"seconds": 3600})
    assert (await client.get("/admin/clock")).json()["offsetSeconds"] == 3600
    await client.post("/admin/reset")
    assert (await client.get("/admin/clock")).json()["offsetSeconds"] == 0
    again = await client.post("/mno/v1/msisdn-reservations", headers=headers)
    assert "idempotent-replayed" not in again.headers


async def test_state_file_keeps_the_state_across_a_restart(tmp_path, make_settings):
    settings = make_settings(state_file=tmp_path / "state.pickle")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            reservation = (await client.post("/mno/v1/msisdn-reservations")).json()
            await client.put("/admin/mno/activation", json={"delaySeconds": 30})
    assert settings.state_file is not None
    assert settings.state_file.exists()

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            read = await client.get(f"/mno/v1/msisdn-reservations/{reservation['id']}")
            assert read.json() == reservation
            assert (await client.get("/admin/mno/activation")).json()["delaySeconds"] == 30


async def test_an_unreadable_state_file_is_set_aside(tmp_path, make_settings):
    state_file = tmp_path / "state.pickle"
    state_file.write_bytes(b"not a state")
    app = create_app(make_settings(state_file=state_file))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        assert (await client.post("/mno/v1/msisdn-reservations")).status_code == 201
    assert (tmp_path / "state.pickle.unreadable").read_bytes() == b"not a state"
