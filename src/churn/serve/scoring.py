"""On-demand scoring: the batch path for a handful of accounts sent in a request.

The request's rows go through the same data contract, the same point-in-time features
and the same calibrated model as ``churn score``, so an account scored here gets exactly
the probability the weekly list gives it for the same data and ``as_of``. Who is a customer
at ``as_of`` is decided by the model's churn definition, as in the weekly run — never by the
request's rows, which for a CRM are live accounts without a ``churned_at``. Reasons are
exact (TreeSHAP) for every account: there are few of them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn.config import ChurnDefinition, ScoreConfig, to_utc
from churn.data.contract import validate
from churn.data.parse import OUT_OF_RANGE, TIMESTAMP_RANGE, timestamps_in_range
from churn.data.population import last_activity
from churn.data.read import DataContractError
from churn.data.rules import FLAGS, NUMBERS, OPTIONAL_INTERACTION_COLUMNS, TEXT
from churn.features.build import build_features
from churn.modeling.model import ChurnModel, MissingInputError, check_inputs
from churn.outreach.reasons import explain, split_reasons
from churn.outreach.score import risk_bands
from churn.serve.model import ServingModel

#: Every column of the input contract's interactions table exists in a request (empty when not
#: sent), as in a batch file, so an account without events scores like one in the batch.
INTERACTION_COLUMNS = ("account_id", "occurred_at", "event_type", *OPTIONAL_INTERACTION_COLUMNS)


@dataclass(frozen=True)
class RowProblem:
    table: str
    row: int | None
    reason: str
    field: str | None = None


class InvalidPayload(ValueError):
    """The request's data cannot be scored; ``problems`` says which rows and why."""

    def __init__(self, message: str, problems: list[RowProblem]) -> None:
        super().__init__(message)
        self.problems = problems


def _frame(rows: list[Mapping[str, object]], columns: tuple[str, ...]) -> pd.DataFrame:
    """Rows as a DataFrame with at least ``columns`` (absent optional values → missing)."""
    frame = pd.DataFrame.from_records(list(rows)) if rows else pd.DataFrame()
    for col in columns:
        if col not in frame.columns:
            frame[col] = None
    return frame


def _timestamps(frame: pd.DataFrame, table: str, columns: tuple[str, ...], problems: list[RowProblem]) -> pd.DataFrame:
    """Timestamps (ISO 8601 text, or datetimes; naive = UTC) → ``datetime64[ns, UTC]``; values
    outside the years pandas can hold are reported per row. A text column with a value that is
    not ISO 8601 is left for the data contract to reject row by row."""
    for col in columns:
        kind = pd.api.types.infer_dtype(frame[col], skipna=True) if col in frame.columns else None
        if kind == "empty":  # no value sent (e.g. no churned_at): a missing timestamp, typed as one
            frame[col] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
            continue
        if kind not in ("datetime", "datetime64", "string"):
            continue
        values = frame[col] if kind == "string" else pd.to_datetime(frame[col], utc=True)
        parsed, outside = timestamps_in_range(values)
        if kind == "string" and bool((parsed.isna() & frame[col].notna()).to_numpy()[outside == 0].any()):
            continue  # text that is not ISO 8601: the contract names those rows
        problems.extend(RowProblem(table, int(row), f"{col} {OUT_OF_RANGE}", col) for row in np.flatnonzero(outside))
        frame[col] = parsed
    return frame


#: JSON value kinds (pandas ``infer_dtype``) a column may hold to be typed before the contract.
_NUMBER_KINDS = {"floating", "integer", "mixed-integer-float", "empty"}


def _typed(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Give the contract's number, flag and text columns their types when every value already
    has the right JSON type (the request schema makes sure of it), so the data contract's parsing
    of text — needed for CSV files, a fixed cost per column for a request — is skipped. A column
    holding anything else (a plain mapping sent to :func:`score_payload`) is left as it is, for
    the contract to parse and reject row by row."""
    kinds = {col: pd.api.types.infer_dtype(frame[col], skipna=True) for col in frame.columns}
    for cols, kinds_ok, dtype in (
        (NUMBERS[table], _NUMBER_KINDS, "float64"),
        (FLAGS[table], ("boolean", "empty"), "boolean"),
        (("account_id", *TEXT[table]), ("string", "empty"), "str"),
    ):
        for col in cols:
            if col in frame.columns and str(frame[col].dtype) != dtype and kinds[col] in kinds_ok:
                frame[col] = frame[col].astype(dtype)
    return frame


def _rejections(data_rejects: dict[str, pd.DataFrame]) -> list[RowProblem]:
    problems = []
    for table, frame in data_rejects.items():
        for row, reason in zip(frame["source_row"].to_numpy() - 2, frame["reject_reason"]):  # source_row counts a CSV header
            problems.append(RowProblem(table, int(row), str(reason)))
    return problems


def _prepare_once(model: ChurnModel) -> ChurnModel:
    """A shallow copy of ``model`` whose ``prepare`` runs once per features frame.

    ``predict_proba`` and ``explain`` each prepare the same rows; for a request of a few
    accounts that preparation is a fixed cost of about a third of the scoring time, so the
    request's copy keeps the first result (the same object, never modified downstream)."""
    kept: list[tuple[pd.DataFrame, pd.DataFrame]] = []

    def prepare(features: pd.DataFrame) -> pd.DataFrame:
        for frame, prepared in kept:
            if frame is features:
                return prepared
        kept.append((features, type(model).prepare(model, features)))
        return kept[-1][1]

    clone = copy.copy(model)
    clone.prepare = prepare  # type: ignore[method-assign]
    return clone


def _not_customers(
    accounts: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp, definition: ChurnDefinition, rows: np.ndarray
) -> list[RowProblem]:
    """Why each account at ``rows`` (positions in ``accounts``) is not a customer at ``as_of``
    under the model's churn definition — the weekly run would not list it either — in words a
    CRM owner can check against their own rows."""
    last = last_activity(accounts, interactions, as_of, definition) if definition.kind == "inactivity" else None
    types = definition.activity_event_types
    activity = f"{' or '.join(types)} event" if types else "event"
    problems = []
    for row in rows:
        account, when = accounts.iloc[row], f"{as_of:%Y-%m-%d %H:%M}"
        if not account["signup_at"] < as_of:
            why = f"it signed up on {account['signup_at']:%Y-%m-%d %H:%M}, not before as_of"
        elif definition.kind == "subscription" and pd.notna(account.get("churned_at")):
            why = f"its churned_at {account['churned_at']:%Y-%m-%d %H:%M} says it had churned by then, and the model counts churn by churned_at (subscription churn)"
        elif last is not None:
            since = f"since it signed up on {account['signup_at']:%Y-%m-%d}" if last.iloc[row] <= account["signup_at"] else f"since {last.iloc[row]:%Y-%m-%d}"
            why = (
                f"no {activity} {since}, longer than the model's {definition.horizon_days}-day horizon: it has lapsed "
                "(inactivity churn; `churn score` lists it for win-back, not on the risk list)"
            )
        else:
            why = f"not one under the model's {definition.kind} churn"
        problems.append(RowProblem("accounts", int(row), f"account {account['account_id']!r} is not a customer at {when}: {why}"))
    return problems


def score_payload(
    payload: object, serving: ServingModel, *, config: ScoreConfig = ScoreConfig(), definition: ChurnDefinition | None = None
) -> pd.DataFrame:
    """Score the accounts of a request.

    ``payload`` has ``as_of``, ``accounts`` and ``interactions`` (a ``ScoreRequest`` or a
    mapping of plain rows). ``definition`` decides who is a customer at ``as_of`` (None: the
    model's, :meth:`ServingModel.churn_definition`; the service passes the one it resolved
    against its scoring runs). Returns one row per requested account, in request order:
    ``account_id``, ``churn_probability``, ``risk_band``, ``reasons`` (list of sentences),
    ``reason_features``, ``reason_drivers``, ``reason_contributions`` (lists), ``reason_method``,
    ``suggested_action`` and ``action_wording`` (from the playbook).

    Raises :class:`InvalidPayload` naming each row the data contract rejects, each account
    that is not a customer at ``as_of`` and each column the model needs but the data lacks;
    :class:`churn.serve.model.UnresolvedDefinition` when the model's churn kind is unknown.
    """
    definition = definition or serving.churn_definition()
    # JSON mode: timestamps come as ISO 8601 text, which pandas reads in one vectorised pass
    raw = payload.model_dump(mode="json") if hasattr(payload, "model_dump") else dict(payload)  # type: ignore[arg-type]
    try:
        as_of = to_utc(raw["as_of"])
        if not TIMESTAMP_RANGE[0] <= as_of <= TIMESTAMP_RANGE[1]:
            raise ValueError
    except (ValueError, TypeError, OverflowError):
        raise InvalidPayload("as_of is not a usable date", [RowProblem("request", None, "as_of is not a usable date", "as_of")]) from None
    problems: list[RowProblem] = []
    accounts = _timestamps(_frame(raw["accounts"], ("account_id", "signup_at", "churned_at")), "accounts", ("signup_at", "churned_at"), problems)
    interactions = _timestamps(_frame(raw.get("interactions") or [], INTERACTION_COLUMNS), "interactions", ("occurred_at",), problems)
    if problems:
        raise InvalidPayload(f"{len(problems)} row(s) cannot be used", problems)
    try:
        data = validate(_typed(accounts, "accounts"), _typed(interactions, "interactions"))
    except DataContractError as exc:
        raise InvalidPayload(str(exc), [RowProblem("request", None, str(exc))]) from None
    problems = _rejections(data.rejects)
    if problems:
        raise InvalidPayload(f"{len(problems)} row(s) rejected by the data contract", problems)
    model = _prepare_once(serving.model)
    try:
        check_inputs(model, data, "request")
    except MissingInputError as exc:
        raise InvalidPayload(str(exc), [RowProblem("request", None, str(exc))]) from None

    features = build_features(
        data.accounts, data.interactions, as_of=as_of, spec=serving.spec, config=serving.feature_config, definition=definition
    )
    ids = data.accounts["account_id"].astype("str")
    inactive = ~ids.isin(features["account_id"])
    if inactive.any():
        problems = _not_customers(data.accounts, data.interactions, as_of, definition, np.flatnonzero(inactive.to_numpy()))
        raise InvalidPayload(
            f"{len(problems)} account(s) not customers at as_of under the model's churn definition "
            f"({definition.kind} churn, {definition.horizon_days}-day horizon)",
            problems,
        )

    p = model.predict_proba(features)
    reasons = explain(model, features, np.ones(len(features), dtype=bool), config)
    actions, wordings = serving.playbook.actions_for(reasons.lead_driver)
    out = pd.DataFrame(
        {
            "account_id": features["account_id"].to_numpy(),
            "churn_probability": p,
            "risk_band": risk_bands(p, config),
            "reasons": [[t for t in row if t] for row in reasons.texts],
            "reason_method": reasons.method,
            "suggested_action": actions,
            "action_wording": wordings,
        }
    )
    lists = pd.DataFrame([split_reasons(*row) for row in zip(reasons.features, reasons.drivers, reasons.contributions)])
    out = pd.concat([out, lists], axis=1)
    return out.set_index("account_id").loc[ids.to_numpy()].reset_index()
