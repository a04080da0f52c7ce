"""Every operation of the OpenAPI document, fuzzed by schemathesis against the served catalog.

Positive cases (valid by the schema) and negative ones (invalid on purpose), sent with a staff
token so writes get past authentication: no answer may be a server error, and every answer must
match what the document promises (status, content type, headers, body schema).
"""

from __future__ import annotations

import asyncio

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 30


def fuzz(base_url: str, headers: dict[str, str], mode: GenerationMode) -> list[str]:
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

        try:
            run()
        except Unsatisfiable:
            # Nothing to make invalid: the operation takes no parameters and no body.
            assert mode is GenerationMode.NEGATIVE, operation.label
            assert not operation.path_parameters, operation.label
        except Exception as error:  # collected so one run reports every operation that fails
            failures.append(f"{operation.label}: {error}")
    assert operations >= 15, "the document lost operations"
    return failures


async def test_every_operation_conforms_to_its_schema_on_valid_input(catalog):
    failures = await asyncio.to_thread(
        fuzz, catalog.base_url, catalog.staff, GenerationMode.POSITIVE
    )
    assert not failures, "\n\n".join(failures)


async def test_invalid_input_never_causes_a_server_error(catalog):
    failures = await asyncio.to_thread(
        fuzz, catalog.base_url, catalog.staff, GenerationMode.NEGATIVE
    )
    assert not failures, "\n\n".join(failures)
