"""Schemathesis over the service's OpenAPI schema, in-process (ASGI, no network), with its
default checks — no 5xx, status codes, content types and bodies as documented, auth
enforced, schema-violating input refused — on generated valid and invalid requests.

Schemathesis' lazy pytest loader does not run under pytest 9 yet, so each operation's
Hypothesis strategy is driven directly; the first test makes sure none is left out.

One check is narrowed for one operation: a schema-valid ``POST /score`` body may still break
the data contract's rules across rows (interactions of an account not in the request, an
account that is not a customer at ``as_of``, a column the model needs), which no OpenAPI
schema can express. Such a body must be answered 200 or 422 ``invalid_rows`` naming the row,
never 422 ``invalid_request`` (which would mean the schema and the validation disagree).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from churn.serve.app import create_app
from churn.serve.settings import ServeSettings
from tests.serve_support import API_KEY, serve_data

#: Operations with parameters or a body: the only ones invalid input can be made for.
WITH_INPUT = {"GET /accounts", "GET /accounts/{account_id}", "POST /score"}
OPERATIONS = (
    "GET /health",
    "GET /ready",
    "GET /version",
    "GET /metrics",
    "GET /accounts",
    "GET /accounts/{account_id}",
    "GET /runs",
    "POST /score",
)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory, training_data, trained):  # type: ignore[no-untyped-def]
    sd = serve_data(tmp_path_factory, training_data, trained)
    app = create_app(ServeSettings(scores_dir=sd.scores_dir, data_dir=sd.data_dir, model_ref=None, api_key=API_KEY), model=sd.serving())
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers={"X-API-Key": API_KEY})


def test_every_operation_is_fuzzed(api_schema) -> None:  # type: ignore[no-untyped-def]
    assert {result.ok().label for result in api_schema.get_all_operations()} == set(OPERATIONS)


CASES = [(label, GenerationMode.POSITIVE) for label in OPERATIONS] + [(label, GenerationMode.NEGATIVE) for label in OPERATIONS if label in WITH_INPUT]


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{label} {mode.value}" for label, mode in CASES])
def test_operation_conforms_to_schema(api_schema, label: str, mode: GenerationMode) -> None:  # type: ignore[no-untyped-def]
    operation = api_schema.find_operation_by_label(label)
    contract_rules = label == "POST /score" and mode is GenerationMode.POSITIVE

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=30, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def check(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call_and_validate(headers={"X-API-Key": API_KEY}, excluded_checks=[positive_data_acceptance] if contract_rules else None)
        if contract_rules:
            assert response.status_code == 200 or (response.status_code == 422 and response.json()["error"]["error"] == "invalid_rows"), response.text

    check()
