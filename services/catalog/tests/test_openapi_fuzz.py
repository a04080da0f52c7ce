"""Every operation of the OpenAPI document, fuzzed by schemathesis against the served catalog.

Sent with a staff token so writes get past authentication: no answer may be a server error,
and every answer must match what the document promises (status, content type, headers, body).
"""

from __future__ import annotations

import asyncio

from mvno.devstack.testing import fuzz_openapi


async def test_every_operation_conforms_to_its_schema_on_valid_input(catalog):
    failures = await asyncio.to_thread(
        fuzz_openapi, catalog.base_url, catalog.staff, negative=False
    )
    assert not failures, "\n\n".join(failures)


async def test_invalid_input_never_causes_a_server_error(catalog):
    failures = await asyncio.to_thread(fuzz_openapi, catalog.base_url, catalog.staff, negative=True)
    assert not failures, "\n\n".join(failures)
