"""POST /score's small-batch path (``request_tables``) gives the tables the data contract gives,
and declines — leaving the contract to name rows and reasons — whenever a row could be rejected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.serve.schemas import ScoreRequest
from churn.serve.scoring import _contract_data, request_tables
from tests.serve_support import request_body

AS_OF = "2024-06-01"


def _body(training_data, count: int, seed: int, days: int = 365) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """Accounts that signed up before AS_OF (CRM-style: churned_at as exported) and their
    interactions in the ``days`` before it."""
    data, _, _ = training_data
    cutoff = pd.Timestamp(AS_OF, tz="UTC")
    eligible = data.accounts[data.accounts["signup_at"] < cutoff]
    picked = eligible.sample(count, random_state=seed)
    t = data.interactions["occurred_at"]
    rows = data.interactions[data.interactions["account_id"].isin(picked["account_id"]) & (t < cutoff) & (t >= cutoff - pd.Timedelta(days=days))]
    return request_body(picked.reset_index(drop=True), rows.reset_index(drop=True), AS_OF)


@pytest.mark.parametrize(("count", "seed", "days"), [(1, 0, 365), (1, 1, 30), (5, 2, 365), (40, 3, 90)])
def test_tables_equal_the_contracts(training_data, count: int, seed: int, days: int) -> None:  # type: ignore[no-untyped-def]
    body = _body(training_data, count, seed, days)
    request = ScoreRequest.model_validate(body)
    fast = request_tables(request, pd.Timestamp.now(tz="UTC"))
    assert fast is not None
    as_of, slow = _contract_data(request.model_dump(mode="json"))  # a mapping: always the full contract
    assert as_of == pd.Timestamp(AS_OF, tz="UTC")
    pd.testing.assert_frame_equal(fast[0], slow.accounts, check_like=True)
    pd.testing.assert_frame_equal(fast[1], slow.interactions, check_like=True)


def _broken(body: dict, how: str) -> dict:  # type: ignore[type-arg]
    accounts = [dict(a) for a in body["accounts"]]
    rows = [dict(r) for r in body["interactions"]]
    if how == "repeated row":
        rows.append(dict(rows[0]))
    elif how == "unknown account":
        rows[1]["account_id"] = "SOMEONE-ELSE"
    elif how == "id with blanks":
        accounts[0]["account_id"] = f" {accounts[0]['account_id']}"
    elif how == "numeric id written with a decimal":
        for r in [accounts[0], *rows]:
            r["account_id"] = "42.0"
    elif how == "repeated account":
        accounts.append(dict(accounts[0]))
    elif how == "blank event type":
        rows[0]["event_type"] = "  "
    elif how == "event in the future":
        rows[0]["occurred_at"] = "2999-01-01T00:00:00Z"
    elif how == "signup outside pandas' years":
        accounts[0]["signup_at"] = "1200-01-01"
    elif how == "churned before signup":
        accounts[0]["churned_at"] = "2000-01-01"
    elif how == "attribute that is a number written as text":
        accounts[0]["plan"] = "12"
    elif how == "attribute that is a flag":
        accounts[0]["vip"] = True
    elif how == "no interactions":
        rows = []
    return {**body, "accounts": accounts, "interactions": rows}


DECLINED = [
    "repeated row", "unknown account", "id with blanks", "numeric id written with a decimal", "repeated account", "blank event type",
    "event in the future", "signup outside pandas' years", "churned before signup", "attribute that is a number written as text",
    "attribute that is a flag", "no interactions",
]  # fmt: skip


@pytest.mark.parametrize("how", DECLINED)
def test_declines_what_the_contract_could_reject(training_data, how: str) -> None:  # type: ignore[no-untyped-def]
    body = _body(training_data, 1, 0)
    assert request_tables(ScoreRequest.model_validate(body), pd.Timestamp.now(tz="UTC")) is not None
    broken = ScoreRequest.model_validate(_broken(body, how))
    assert request_tables(broken, pd.Timestamp.now(tz="UTC")) is None


def test_missing_values_and_time_zones_are_typed_as_the_contract_types_them(training_data) -> None:  # type: ignore[no-untyped-def]
    body = _body(training_data, 2, 4)
    rows = [dict(r) for r in body["interactions"]]
    rows[0]["occurred_at"] = rows[0]["occurred_at"].replace("Z", "")  # naive: UTC
    rows[1]["occurred_at"] = "2024-05-20T10:00:00+02:00"
    accounts = [dict(a) for a in body["accounts"]]
    accounts[1]["plan"] = None
    accounts[0]["churned_at"] = "2024-05-30T12:00:00Z"
    request = ScoreRequest.model_validate({**body, "accounts": accounts, "interactions": rows})
    fast = request_tables(request, pd.Timestamp.now(tz="UTC"))
    assert fast is not None
    _, slow = _contract_data(request.model_dump(mode="json"))
    pd.testing.assert_frame_equal(fast[0], slow.accounts, check_like=True)
    pd.testing.assert_frame_equal(fast[1], slow.interactions, check_like=True)
    assert fast[0]["churned_at"].iloc[0] == pd.Timestamp("2024-05-30T12:00:00Z") and fast[0]["plan"].isna().iloc[1]


def _prepared_by_hand(model, features: pd.DataFrame) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """What ``prepare`` means, one column at a time: numbers as float64 (text that is not a
    number → missing), categories as the training categories (unseen → missing)."""
    out = {}
    for name in model.feature_names:
        if name in model.categories:
            known = features[name].astype("object").where(features[name].isin(model.categories[name]), None)
            out[name] = pd.Categorical(known, categories=model.categories[name])
        else:
            out[name] = pd.to_numeric(features[name], errors="coerce").astype("float64").to_numpy()
    return pd.DataFrame(out, index=features.index)


def test_prepare_and_matrix_for_any_column_layout(trained, latest_features) -> None:  # type: ignore[no-untyped-def]
    """``prepare`` keeps the last column layout's positions: a table in another layout right
    after (reordered, indexed by account, numbers as text, an unseen category) is still read by
    name, and ``matrix`` of a prepared table in another column order is the same matrix."""
    model = trained.model
    head = latest_features.head(7)
    numeric = next(n for n in model.feature_names if n not in model.categories)
    category = next(iter(model.categories))
    odd = head.iloc[:, ::-1].set_index("account_id").astype({numeric: "object", category: "object"})
    odd[numeric] = [str(v) if i % 2 else "not a number" for i, v in enumerate(head[numeric])]
    odd.iloc[0, odd.columns.get_loc(category)] = "never seen"
    for frame in (head, odd, head, odd.iloc[:3]):
        prepared = model.prepare(frame)
        pd.testing.assert_frame_equal(prepared, _prepared_by_hand(model, frame))
        matrix = model.matrix(prepared)
        np.testing.assert_array_equal(model.matrix(prepared.iloc[:, ::-1]), matrix)
        codes = np.where(prepared[category].cat.codes.to_numpy() >= 0, prepared[category].cat.codes.to_numpy(), np.nan)
        np.testing.assert_array_equal(matrix[:, model.feature_names.index(category)], codes)
        np.testing.assert_array_equal(matrix[:, model.feature_names.index(numeric)], prepared[numeric].to_numpy())
