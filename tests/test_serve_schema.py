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

Random schema-valid bodies almost never satisfy the contract, so they rarely reach the
model. A second strategy, handed to Schemathesis through its ``before_generate_body`` hook,
builds bodies that do — customers at ``as_of`` with the attributes and event types the
model knows, events before ``as_of`` — and every one must be scored: 200, one well-formed
result per account, with all of Schemathesis' checks on.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.hooks import HookContext, HookDispatcher, HookScope
from schemathesis.specs.openapi.checks import positive_data_acceptance

from churn.config import SURVEY_RANGES
from churn.features.spec import FeatureSpec
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
def served(tmp_path_factory, training_data, trained):  # type: ignore[no-untyped-def]
    sd = serve_data(tmp_path_factory, training_data, trained)
    app = create_app(ServeSettings(scores_dir=sd.scores_dir, data_dir=sd.data_dir, model_ref=None, api_key=API_KEY), model=sd.serving())
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers={"X-API-Key": API_KEY}), sd.serving().spec


@pytest.fixture(scope="module")
def api_schema(served):  # type: ignore[no-untyped-def]
    return served[0]


def test_every_operation_is_fuzzed(api_schema) -> None:  # type: ignore[no-untyped-def]
    assert {result.ok().label for result in api_schema.get_all_operations()} == set(OPERATIONS)


CASES = [(label, GenerationMode.POSITIVE) for label in OPERATIONS] + [(label, GenerationMode.NEGATIVE) for label in OPERATIONS if label in WITH_INPUT]


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{label} {mode.value}" for label, mode in CASES])
def test_operation_conforms_to_schema(api_schema, label: str, mode: GenerationMode) -> None:  # type: ignore[no-untyped-def]
    operation = api_schema.find_operation_by_label(label)
    contract_rules = label == "POST /score" and mode is GenerationMode.POSITIVE

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=30, deadline=None, database=None, derandomize=True)
    def check(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call_and_validate(headers={"X-API-Key": API_KEY}, excluded_checks=[positive_data_acceptance] if contract_rules else None)
        if contract_rules:
            assert response.status_code == 200 or (response.status_code == 422 and response.json()["error"]["error"] == "invalid_rows"), response.text

    check()


# --------------------------------------------------------------------------- bodies the data contract accepts

#: Account ids: no white space or decimal point, so the contract's id normalisation keeps them
#: as written and distinct ids stay distinct.
ID_TEXT = st.text(st.characters(categories=("L", "N"), include_characters="-_", exclude_characters="."), min_size=1, max_size=24)
#: Latest ``as_of`` drawn: the contract refuses timestamps after today.
LATEST = datetime(2024, 7, 1, tzinfo=timezone.utc)


def iso(moment: datetime, layout: int) -> str:
    """One instant in one of the ISO 8601 layouts a CRM sends (naive text is UTC)."""
    return (
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        moment.astimezone(timezone(timedelta(hours=2))).isoformat(),
        moment.strftime("%Y-%m-%d %H:%M:%S.%f"),
    )[layout]


def maybe(values: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | values


@st.composite
def valid_score_body(draw: st.DrawFn, spec: FeatureSpec) -> dict:
    """A POST /score body every row of which the data contract accepts, for accounts that are
    customers at ``as_of`` (signed up before it, not churned) with every attribute the model
    uses (known categories, now and then a new one) and events of the model's event types and
    channels before ``as_of`` — at least one in the last 29 days, so that the account is a
    customer under an inactivity definition too (quiet customers have their own test below)."""
    layout = st.integers(0, 2)
    as_of = LATEST - timedelta(days=draw(st.integers(0, 400)), seconds=draw(st.integers(0, 86_399)))
    ids = draw(st.lists(ID_TEXT, min_size=1, max_size=4, unique=True))
    categorical = dict(spec.categorical_attributes)
    accounts, interactions = [], []
    for account_id in ids:
        signup = as_of - timedelta(seconds=draw(st.integers(60, 3 * 365 * 86_400)))
        row: dict[str, object] = {"account_id": account_id, "signup_at": iso(signup, draw(layout)), "mrr": draw(maybe(st.floats(0, 1e5)))}
        row.update({name: draw(maybe(st.floats(0, 1e6))) for name in spec.numeric_attributes if name != "mrr"})
        row.update({name: draw(maybe(st.sampled_from(values) | ID_TEXT)) for name, values in categorical.items()})
        accounts.append(row)
        # distinct moments (a set), so that no two events of an account are one duplicated row
        tenure = int((as_of - signup).total_seconds())
        recent = draw(st.integers(1, min(tenure, 29 * 86_400)))
        for seconds in {recent, *draw(st.lists(st.integers(1, tenure), max_size=12))}:
            interactions.append(
                {
                    "account_id": account_id,
                    "occurred_at": iso(as_of - timedelta(seconds=seconds), draw(layout)),
                    "event_type": draw(st.sampled_from(spec.event_types)),
                    "channel": draw(maybe(st.sampled_from(spec.channels))) if spec.channels else None,
                    "case_id": draw(maybe(ID_TEXT)),
                    "wait_seconds": draw(maybe(st.floats(0, 1e5))),
                    "handle_seconds": draw(maybe(st.floats(0, 1e5))),
                    "resolved": draw(maybe(st.booleans())),
                    "transferred": draw(maybe(st.booleans())),
                    **{name: draw(maybe(st.floats(lo, hi))) for name, (lo, hi) in SURVEY_RANGES.items()},
                    "amount": draw(maybe(st.floats(-1e4, 1e4))),
                }
            )
    return {"as_of": iso(as_of, draw(layout)), "accounts": accounts, "interactions": draw(st.permutations(interactions))}


def test_valid_score_requests_are_scored(served) -> None:  # type: ignore[no-untyped-def]
    api_schema, spec = served
    operation = api_schema.find_operation_by_label("POST /score")
    hooks = HookDispatcher(scope=HookScope.TEST)

    def before_generate_body(context: HookContext, strategy: st.SearchStrategy) -> st.SearchStrategy:
        return valid_score_body(spec)

    hooks.register_hook_with_name(before_generate_body, "before_generate_body")

    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE, hooks=hooks))
    @settings(max_examples=25, deadline=None, database=None, derandomize=True)
    def check(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call_and_validate(headers={"X-API-Key": API_KEY})  # every check, positive_data_acceptance (2xx) too
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["account_id"] for r in results] == [a["account_id"] for a in case.body["accounts"]]
        for r in results:
            assert 0 <= r["churn_probability"] <= 1 and r["risk_band"] in ("high", "medium", "low")
            assert len(r["reasons"]) == len(r["reason_features"]) == len(r["reason_drivers"]) == len(r["reason_contributions"]) > 0
            assert r["suggested_action"] and r["action_wording"]

    check()


def test_a_customer_without_recent_events_is_scored(served) -> None:  # type: ignore[no-untyped-def]
    """Signed up a year before ``as_of``, never churned, no event in the 30 days before it: a
    customer under the model's subscription definition, as the weekly list treats it."""
    api_schema, spec = served
    operation = api_schema.find_operation_by_label("POST /score")
    account = {"account_id": "quiet-1", "signup_at": "2023-06-01", "mrr": 50.0}
    account.update({name: None for name in (*spec.numeric_attributes, *dict(spec.categorical_attributes)) if name != "mrr"})
    event = {"account_id": "quiet-1", "event_type": spec.event_types[0]}
    old_event = {**event, "occurred_at": "2024-03-01T10:00:00Z"}
    for events, recent in (([old_event, {**event, "occurred_at": "2024-05-30T10:00:00Z"}], True), ([old_event], False)):
        body = {"as_of": "2024-06-01T00:00:00Z", "accounts": [account], "interactions": events}
        response = operation.Case(body=body, media_type="application/json").call(headers={"X-API-Key": API_KEY})
        assert response.status_code == 200, (recent, response.text)
