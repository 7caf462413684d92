"""Fuzz every API operation from its OpenAPI spec: never a 5xx, always the documented shape.

Driven through schemathesis's Python API (its pytest plugin does not run under pytest 9 yet).
"""

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import create_device, create_poll, user_headers

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 30


def test_api_survives_fuzzing(app: Flask) -> None:
    client = app.test_client()
    headers = user_headers(client)
    create_poll(client, headers)  # something for the ids the fuzzer picks (1, 2, ...)
    create_device(client, headers, paused=True)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20

    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        fuzz()
