"""Request and response models of the API: what the OpenAPI schema documents.

Timestamps in requests are ISO 8601 text (naive = UTC), as in the input contract's files;
JSON numbers or other types are refused. Row-level rules the schema cannot express
(unknown account ids, duplicates, an account that is not a customer at ``as_of`` under the
model's churn definition) are checked by the data contract and the model's population rule
and answered with 422 naming the row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

from churn.config import SURVEY_RANGES

Band = Literal["high", "medium", "low"]
#: ``key`` ascending or ``-key`` descending.
Sort = Literal[
    "rank", "-rank", "churn_probability", "-churn_probability", "revenue_at_risk", "-revenue_at_risk",
    "probability_change", "-probability_change", "account_id", "-account_id",
]  # fmt: skip


def _text_only(value: object) -> object:
    """Timestamps come as text: a bare number would silently be read as seconds since 1970."""
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date or date-time as text")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_text_only)]
Text = Annotated[StrictStr, Field(min_length=1, max_length=200)]


# --------------------------------------------------------------------------- errors


class ErrorDetail(BaseModel):
    """One problem: where (table and row of a request, or a parameter) and why."""

    reason: str
    table: str | None = None
    row: int | None = Field(None, description="0-based position in the request's list")
    field: str | None = None


class ErrorBody(BaseModel):
    status: int
    error: str = Field(description="short machine-readable code, e.g. not_found, invalid_rows")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """Every error, from any endpoint, has this shape."""

    error: ErrorBody


# --------------------------------------------------------------------------- service


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    ready: bool
    model_loaded: bool
    run_present: bool
    problems: list[str] = Field(default_factory=list)


class Version(BaseModel):
    service: str = "churn"
    version: str
    model: str | None = None
    model_version: str | None = None
    run_id: str | None = None
    as_of: str | None = None


class RunSummary(BaseModel):
    run_id: str
    as_of: str
    scored_at: str | None = None
    model: str | None = None
    model_version: str | None = None
    accounts: int | None = None
    high: int | None = None
    medium: int | None = None
    low: int | None = None
    outreach: int | None = None
    control: int | None = None
    latest: bool = False


class RunList(BaseModel):
    runs: list[RunSummary]


# --------------------------------------------------------------------------- accounts


class AccountSummary(BaseModel):
    """One row of the latest risk list."""

    account_id: str
    owner: str | None = None
    segment: str | None = None
    rank: int
    churn_probability: float
    risk_band: Band
    annual_value: float | None = None
    revenue_at_risk: float | None = None
    outreach: bool
    control: bool = Field(description="held out: not contacted, so the effect of outreach can be measured")
    suggested_action: str | None = None
    reasons: list[str] = Field(default_factory=list, description="plain-language drivers, strongest first")
    change: str | None = None
    probability_change: float | None = None
    expected_saved_value: float | None = Field(None, description="estimated reduction of churn probability if called × annual value − cost of the call (uplift model)")


class AccountPage(BaseModel):
    run_id: str
    as_of: str
    total: int = Field(description="accounts matching the filters")
    offset: int
    limit: int
    items: list[AccountSummary]


class ScorePoint(BaseModel):
    run_id: str
    as_of: str
    churn_probability: float
    risk_band: Band | None = None


class AccountDetail(AccountSummary):
    run_id: str
    as_of: str
    action_wording: str | None = Field(None, description="what to say, from the team's playbook")
    reason_features: list[str] = Field(default_factory=list)
    reason_drivers: list[str] = Field(default_factory=list, description="each reason's driver family (support_effort, usage, …)")
    reason_contributions: list[float] = Field(
        default_factory=list, description="each reason's contribution: log-odds (tree_shap) or deviation score (deviation)"
    )
    reason_method: str | None = None
    previous_probability: float | None = None
    reasons_changed: bool | None = None
    # time to churn (a model trained with --survival; null otherwise and on the lapsed)
    survival_1m: float | None = Field(None, description="chance it is still a customer 1 month after the run's date")
    survival_3m: float | None = None
    survival_6m: float | None = None
    survival_12m: float | None = None
    expected_months_24: float | None = Field(None, description="expected months, of the next 24, it is still a customer at the end of")
    remaining_value: float | None = Field(None, description="Σ survival × monthly value over 24 months, discounted (--discount-rate)")
    uplift: float | None = Field(None, description="estimated absolute reduction of the churn probability if called (uplift model; absent without one)")
    churn_if_called: float | None = Field(None, description="estimated churn probability if called (uplift model)")
    history: list[ScorePoint] = Field(default_factory=list, description="this account's score in past runs, oldest first")


# --------------------------------------------------------------------------- on-demand scoring


class AccountIn(BaseModel):
    """An accounts row of the input contract; other attributes (plan, segment, …) as extra fields."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"example": {"account_id": "A1", "signup_at": "2023-03-14", "mrr": 49.0, "plan": "pro"}})
    __pydantic_extra__: dict[str, StrictStr | float | bool | None]

    account_id: Text
    signup_at: Timestamp
    churned_at: Timestamp | None = Field(
        None,
        description=(
            "empty for a live account; under a subscription model an account that churned before `as_of` is not a "
            "customer (422), an inactivity model decides by activity alone, as the weekly run does"
        ),
    )
    mrr: float | None = Field(None, ge=0)


class InteractionIn(BaseModel):
    """An interactions row of the input contract."""

    model_config = ConfigDict(extra="forbid")

    account_id: Text
    occurred_at: Timestamp
    event_type: Text
    channel: StrictStr | None = None
    case_id: StrictStr | None = None
    wait_seconds: float | None = Field(None, ge=0)
    handle_seconds: float | None = Field(None, ge=0)
    resolved: bool | None = None
    transferred: bool | None = None
    ces: float | None = Field(None, ge=SURVEY_RANGES["ces"][0], le=SURVEY_RANGES["ces"][1])
    csat: float | None = Field(None, ge=SURVEY_RANGES["csat"][0], le=SURVEY_RANGES["csat"][1])
    nps: float | None = Field(None, ge=SURVEY_RANGES["nps"][0], le=SURVEY_RANGES["nps"][1])
    amount: float | None = None


class ScoreRequest(BaseModel):
    as_of: Timestamp = Field(description="score as of this moment: features use events strictly before it")
    accounts: list[AccountIn] = Field(min_length=1, max_length=1000)
    interactions: list[InteractionIn] = Field(default_factory=list, max_length=500_000)


class ScoredAccount(BaseModel):
    account_id: str
    churn_probability: float
    risk_band: Band
    reasons: list[str]
    reason_features: list[str]
    reason_drivers: list[str]
    reason_contributions: list[float] = Field(description="log-odds contributions (TreeSHAP), strongest first")
    reason_method: str
    suggested_action: str
    action_wording: str


class ScoreResponse(BaseModel):
    as_of: str
    model: str
    results: list[ScoredAccount]
