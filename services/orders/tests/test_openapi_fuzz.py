"""Every operation of the orders OpenAPI document, fuzzed by schemathesis against the served app.

With a channel's token (``orders:write``): no answer may be a server error, and every answer
must match the document. Generated orders are refused or placed; none may break the service.
"""

from __future__ import annotations

import asyncio

from mvno.devstack.testing import fuzz_openapi


async def test_every_operation_conforms_to_its_schema_on_valid_input(orders):
    headers = {
        **orders.client(scopes=("orders:write", "orders:read", "inventory:secrets")),
        "Idempotency-Key": "fuzz",
    }
    failures = await asyncio.to_thread(fuzz_openapi, orders.base_url, headers, negative=False)
    assert not failures, "\n\n".join(failures)


async def test_invalid_input_never_causes_a_server_error(orders):
    headers = orders.client(scopes=("orders:write", "orders:read", "inventory:secrets"))
    failures = await asyncio.to_thread(fuzz_openapi, orders.base_url, headers, negative=True)
    assert not failures, "\n\n".join(failures)
