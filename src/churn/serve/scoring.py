"""On-demand scoring: the batch path for a handful of accounts sent in a request.

The request's rows go through the same data contract, the same point-in-time features
and the same calibrated model as ``churn score``, so an account scored here gets exactly
the probability the weekly list gives it for the same data and ``as_of``. Who is a customer
at ``as_of`` is decided by the model's churn definition, as in the weekly run — never by the
request's rows, which for a CRM are live accounts without a ``churned_at``. Reasons are
exact (TreeSHAP) for every account: there are few of them.

A request is a handful of rows, where pandas' fixed cost per operation, not the rows, is the
time. So a clean validated request takes a small-batch path to the contract's tables
(:func:`request_tables`: the contract's checks as a screen over the request's objects; any row
it could reject sends the request through the contract itself, which names rows and reasons),
and the playbook is looked up per account. LightGBM runs twice (probability, then TreeSHAP): a
probability rebuilt from the contributions' sum differs from LightGBM's own in the last bits for
most rows (the sum is taken in another order), and the score must equal the batch's exactly;
both passes together take about 0.3 ms of CPU for one row (the benchmark's model).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TypeVar

import numpy as np
import pandas as pd

from churn.config import ChurnDefinition, ScoreConfig, to_utc
from churn.data.contract import ContractData, validate
from churn.data.parse import OUT_OF_RANGE, TIMESTAMP_RANGE, looks_numeric, normalise_ids, timestamps_in_range
from churn.data.population import last_activity
from churn.data.read import DataContractError
from churn.data.rules import FLAGS, FUTURE_SLACK, NUMBERS, OPTIONAL_INTERACTION_COLUMNS, SCREEN, TEXT, ColumnScreen
from churn.features.build import build_features
from churn.modeling.model import ChurnModel, MissingInputError, check_inputs
from churn.modeling.survival import survival_columns
from churn.outreach.playbook import DEFAULT_FAMILY
from churn.outreach.reasons import explain, split_reasons
from churn.outreach.score import annual_value, risk_bands
from churn.serve.model import ServingModel

T = TypeVar("T")

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
    holding anything else (a plain mapping sent to :func:`score_records`) is left as it is, for
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


# --------------------------------------------------------------------------- the small-batch path

#: Interaction columns by how a clean request's values are typed (as the data contract types them).
_TEXT_COLUMNS = ("event_type", "channel", "case_id")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_NS_RANGE = (TIMESTAMP_RANGE[0].value, TIMESTAMP_RANGE[1].value)


def _utc_ns(values: list[datetime | None]) -> pd.Series | None:
    """Datetimes (naive = UTC; None = missing) as ``datetime64[ns, UTC]``, by integer arithmetic
    (a third of what pandas' object parsing costs); None when one is outside the years pandas
    can hold (the contract then names the row)."""
    ns = [
        None if v is None else ((v if v.tzinfo is not None else v.replace(tzinfo=timezone.utc)) - _EPOCH) // _MICROSECOND * 1000
        for v in values
    ]
    if any(v is not None and not _NS_RANGE[0] <= v <= _NS_RANGE[1] for v in ns):
        return None
    stamps = np.array([np.iinfo(np.int64).min if v is None else v for v in ns], dtype=np.int64).view("M8[ns]")  # int64 min: NaT
    return pd.Series(pd.DatetimeIndex(stamps).tz_localize("UTC"))


def _numbers(values: list[object], rule: ColumnScreen | None) -> np.ndarray | None:
    """Floats (None → NaN); None when a value is not finite or breaks ``rule`` (the contract names it)."""
    out = np.array(values, dtype="float64")  # numpy makes None NaN
    present = np.isfinite(out)
    if int(present.sum()) + values.count(None) != len(values):  # a value sent, but not finite
        return None
    if rule is not None and ((rule.min_value is not None and (out[present] < rule.min_value).any()) or (rule.max_value is not None and (out[present] > rule.max_value).any())):
        return None
    return out


def _ids_in_normal_form(ids: list[str]) -> bool:
    """Whether :func:`normalise_ids` leaves every id as it is (asked of it only for an id that
    looks like a number: text without surrounding blanks that is not one is left alone)."""
    unique = list(dict.fromkeys(ids))
    if not all(i and i.strip() == i for i in unique):
        return False
    numeric = [i for i in unique if looks_numeric(i)]
    return not numeric or normalise_ids(pd.Series(numeric, dtype="str")).tolist() == numeric


def _attribute(values: list[object]) -> pd.Series | np.ndarray | None:
    """An extra account column as the contract types it: text (none looking like a number) or
    numbers; anything else (flags, numbers written as text, all missing) → None."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, str) and v.strip() and not looks_numeric(v) for v in present):
        return pd.Series(values, dtype="str")
    if present and all(isinstance(v, float) for v in present):
        return _numbers(values, None)
    return None


def request_tables(payload: object, now: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The accounts and interactions of a validated request (a ``ScoreRequest``) as the tables
    the data contract would accept — the same columns, types and values — built from the request's
    objects without the contract's per-table passes, which are a fixed cost of several ms for a
    few rows. Returns None whenever the contract could reject a row or type a column otherwise:
    an id not in its normal form, a repeated account or interaction, an unknown account, a
    blank event type, a time outside pandas' years or after ``now`` + one day, a churn before the
    signup, a number out of its range, an attribute that is not plain text or numbers, no
    interactions. The caller then runs the full contract, which names rows and reasons; so this
    path never changes what is rejected or why (``tests/test_serve_fast.py`` compares the tables)."""
    accounts = getattr(payload, "accounts", None)
    interactions = getattr(payload, "interactions", None)
    if not accounts or not interactions or not all(hasattr(r, "__pydantic_extra__") for r in accounts):
        return None
    ids = [a.account_id for a in accounts]
    if len(set(ids)) != len(ids) or not _ids_in_normal_form(ids):
        return None
    latest = now + FUTURE_SLACK
    signup, churned = _utc_ns([a.signup_at for a in accounts]), _utc_ns([a.churned_at for a in accounts])
    if signup is None or churned is None or bool((signup > latest).any()) or bool((churned < signup).any()):
        return None
    acc: dict[str, object] = {"account_id": pd.Series(ids, dtype="str"), "signup_at": signup, "churned_at": churned}
    acc["mrr"] = _numbers([a.mrr for a in accounts], SCREEN["accounts"]["mrr"])
    extras = list(dict.fromkeys(k for a in accounts for k in (a.__pydantic_extra__ or {})))
    for key in extras:
        acc[key] = _attribute([(a.__pydantic_extra__ or {}).get(key) for a in accounts])
    if any(v is None for v in acc.values()):
        return None

    rows = [r.__dict__ for r in interactions]
    known = set(ids)
    if any(r["account_id"] not in known for r in rows) or any(not r["event_type"].strip() for r in rows):
        return None
    if len({tuple(r.values()) for r in rows}) != len(rows):  # an exact repeat: the contract rejects it
        return None
    occurred = _utc_ns([r["occurred_at"] for r in rows])
    if occurred is None or bool((occurred > latest).any()):
        return None
    inter: dict[str, object] = {"account_id": pd.Series([r["account_id"] for r in rows], dtype="str"), "occurred_at": occurred}
    for col in INTERACTION_COLUMNS[2:]:
        values = [r[col] for r in rows]
        if col in _TEXT_COLUMNS:
            inter[col] = pd.Series(values, dtype="str")
        elif col in FLAGS["interactions"]:
            inter[col] = pd.Series(values, dtype="boolean")
        else:
            inter[col] = _numbers(values, SCREEN["interactions"].get(col))
    if any(v is None for v in inter.values()):
        return None
    return _table(acc, len(accounts)), _table(inter, len(rows))


def _table(columns: dict[str, object], n: int) -> pd.DataFrame:
    """A frame of this request's own columns, as their arrays: a DataFrame of Series aligns
    their indexes (a union and a reindex per column), a fixed cost of about a millisecond."""
    arrays = {name: value.array if isinstance(value, pd.Series) else value for name, value in columns.items()}
    return pd.DataFrame(arrays, index=pd.RangeIndex(n), copy=False)


def _rejections(data_rejects: dict[str, pd.DataFrame]) -> list[RowProblem]:
    problems = []
    for table, frame in data_rejects.items():
        for row, reason in zip(frame["source_row"].to_numpy() - 2, frame["reject_reason"]):  # source_row counts a CSV header
            problems.append(RowProblem(table, int(row), str(reason)))
    return problems


def _once_per_object(compute: Callable[[pd.DataFrame], T]) -> Callable[[pd.DataFrame], T]:
    """``compute`` remembered by the identity of its argument (frames are not hashable, and an
    equal-but-other frame must be computed anew)."""
    kept: list[tuple[pd.DataFrame, T]] = []

    def once(frame: pd.DataFrame) -> T:
        for seen, result in kept:
            if seen is frame:
                return result
        kept.append((frame, compute(frame)))
        return kept[-1][1]

    return once


def _prepare_once(model: ChurnModel) -> ChurnModel:
    """A shallow copy of ``model`` whose ``prepare`` runs once per features frame, and ``matrix``
    once per prepared table.

    ``predict_proba`` and ``explain`` each prepare the same rows and make their float matrix;
    for a request of a few accounts each is a fixed cost of pandas calls, so the request's copy
    keeps the first result (the same object, never modified downstream)."""
    prepare = _once_per_object(lambda features: type(model).prepare(model, features))
    matrix = _once_per_object(lambda prepared: type(model).matrix(model, prepared))
    clone = copy.copy(model)
    clone.prepare = prepare  # type: ignore[method-assign]
    clone.matrix = matrix  # type: ignore[method-assign]
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


def _as_of(value: object) -> pd.Timestamp:
    try:
        as_of = to_utc(value)  # type: ignore[arg-type]
        if not TIMESTAMP_RANGE[0] <= as_of <= TIMESTAMP_RANGE[1]:
            raise ValueError
    except (ValueError, TypeError, OverflowError):
        raise InvalidPayload("as_of is not a usable date", [RowProblem("request", None, "as_of is not a usable date", "as_of")]) from None
    return as_of


def _contract_data(payload: object) -> tuple[pd.Timestamp, ContractData]:
    """``as_of`` and the request's rows as the data contract accepts them; :class:`InvalidPayload`
    naming each row it rejects. A clean validated request takes :func:`request_tables`; anything
    else, and any request that path declines, goes through the contract itself."""
    tables = request_tables(payload, pd.Timestamp.now(tz="UTC")) if hasattr(payload, "model_dump") else None
    if tables is not None:
        return _as_of(payload.as_of), ContractData(tables[0], tables[1], {}, [])  # type: ignore[attr-defined]
    # JSON mode: timestamps come as ISO 8601 text, which pandas reads in one vectorised pass
    raw = payload.model_dump(mode="json") if hasattr(payload, "model_dump") else dict(payload)  # type: ignore[arg-type]
    as_of = _as_of(raw["as_of"])
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
    return as_of, data


def _survival(model: ChurnModel, features: pd.DataFrame, accounts: pd.DataFrame, config: ScoreConfig) -> list[dict[str, float]] | None:
    """The risk list's time-to-churn columns per row of ``features``, computed as ``churn score``
    computes them (curves, 12 × the value column, the discount rate); None without a survival model."""
    curves = model.survival_curves(features)
    if curves is None:
        return None
    annual, _ = annual_value(features, accounts, config)
    return survival_columns(curves, annual / 12.0, config.discount_rate).to_dict("records")  # type: ignore[return-value]


def score_records(
    payload: object, serving: ServingModel, *, config: ScoreConfig = ScoreConfig(), definition: ChurnDefinition | None = None
) -> list[dict[str, object]]:
    """Score the accounts of a request, one plain record per account (Python floats and text,
    what ``to_dict("records")`` of the table gives): a scoring process sends these back, and
    building a DataFrame of a few rows only to take them out of it again cost a millisecond.

    ``payload`` has ``as_of``, ``accounts`` and ``interactions`` (a ``ScoreRequest`` or a
    mapping of plain rows). ``definition`` decides who is a customer at ``as_of`` (None: the
    model's, :meth:`ServingModel.churn_definition`; the service passes the one it resolved
    against its scoring runs). One record per requested account, in request order:
    ``account_id``, ``churn_probability``, ``risk_band``, ``reasons`` (list of sentences),
    ``reason_features``, ``reason_drivers``, ``reason_contributions`` (lists), ``reason_method``,
    ``suggested_action`` and ``action_wording`` (from the playbook); with a survival model
    (``churn train --survival``) also :data:`churn.modeling.survival.SURVIVAL_COLUMNS`, as the
    weekly list has them.

    Raises :class:`InvalidPayload` naming each row the data contract rejects, each account
    that is not a customer at ``as_of`` and each column the model needs but the data lacks;
    :class:`churn.serve.model.UnresolvedDefinition` when the model's churn kind is unknown.
    """
    definition = definition or serving.churn_definition()
    as_of, data = _contract_data(payload)
    model = _prepare_once(serving.model)
    try:
        check_inputs(model, data, "request")
    except MissingInputError as exc:
        raise InvalidPayload(str(exc), [RowProblem("request", None, str(exc))]) from None

    features = build_features(
        data.accounts, data.interactions, as_of=as_of, spec=serving.spec, config=serving.feature_config, definition=definition
    )
    ids = data.accounts["account_id"].astype("str").tolist()
    customers = set(features["account_id"].tolist())  # a few ids: a set, not pandas' isin
    inactive = np.array([i not in customers for i in ids], dtype=bool)
    if inactive.any():
        problems = _not_customers(data.accounts, data.interactions, as_of, definition, np.flatnonzero(inactive))
        raise InvalidPayload(
            f"{len(problems)} account(s) not customers at as_of under the model's churn definition "
            f"({definition.kind} churn, {definition.horizon_days}-day horizon)",
            problems,
        )

    p = model.predict_proba(features)
    reasons = explain(model, features, np.ones(len(features), dtype=bool), config)
    # Playbook.actions_for's rule (unknown or no family → the default action), looked up per
    # account: its pandas mapping is a fixed cost of about a millisecond for a handful of rows
    known = serving.playbook.actions
    chosen = [known.get(family) or known.get(DEFAULT_FAMILY) for family in reasons.lead_driver]
    actions = [a.title if a is not None else None for a in chosen]
    wordings = [a.wording if a is not None else None for a in chosen]
    bands = risk_bands(p, config)
    survival = _survival(model, features, data.accounts, config)
    scored = {
        account: {
            "account_id": account,
            "churn_probability": float(p[i]),
            "risk_band": str(bands[i]),
            "reasons": [t for t in reasons.texts[i] if t],
            "reason_method": reasons.method[i],
            "suggested_action": actions[i],
            "action_wording": wordings[i],
            **split_reasons(reasons.features[i], reasons.drivers[i], reasons.contributions[i]),
            **(survival[i] if survival is not None else {}),
        }
        for i, account in enumerate(features["account_id"].tolist())
    }
    return [scored[a] for a in ids]
