"""Every operation of portal-api's OpenAPI document, fuzzed by schemathesis against a served
replica: no answer may be a server error, and every answer must match the document.

Sent with a customer's token who owns a line and an order, on a replica whose rate limits are
lifted (the fuzzer sends hundreds of requests a minute; the limits have their own tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mvno.devstack.servers import serve_app
from mvno.devstack.testing import fuzz_openapi
from mvno.portal_api.app import create_app

from .conftest import PortalWorld
from .test_screens import two_customers_with_a_line_each


@pytest.fixture
async def fuzzed(portal: PortalWorld) -> AsyncIterator[tuple[str, dict[str, str]]]:
    await two_customers_with_a_line_each(portal)
    settings = portal.settings.model_copy(
        update={
            "rate_limit_per_customer": "100000/minute",
            "rate_limit_per_ip": "100000/minute",
            "rate_limit_orders_per_customer": "100000/minute",
        }
    )
    async with serve_app(create_app(settings)) as base_url:
        yield base_url, portal.customer("customer-alice")


async def test_every_operation_conforms_to_its_schema_on_valid_input(fuzzed) -> None:
    base_url, headers = fuzzed
    failures = await asyncio.to_thread(fuzz_openapi, base_url, headers, negative=False)
    assert not failures, "\n\n".join(failures)


async def test_invalid_input_never_causes_a_server_error(fuzzed) -> None:
    base_url, headers = fuzzed
    failures = await asyncio.to_thread(fuzz_openapi, base_url, headers, negative=True)
    assert not failures, "\n\n".join(failures)
