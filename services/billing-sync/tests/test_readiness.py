"""billing-sync is ready once its catalogue copy has received catalog's launches."""

from mvno.devstack.testing import assert_problem


async def test_a_fresh_catalogue_copy_keeps_billing_sync_not_ready_until_it_arrives(fresh_billing):
    waiting = await fresh_billing.api.get("/health/ready")
    problem = assert_problem(waiting, 503, "not-ready")
    assert problem["checks"]["database"] == problem["checks"]["bus"] == "ok"
    assert "catalogue copy is empty" in problem["checks"]["catalogue-copy"]

    await fresh_billing.launch_catalogue()

    ready = await fresh_billing.api.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "bus": "ok", "catalogue-copy": "ok"}
