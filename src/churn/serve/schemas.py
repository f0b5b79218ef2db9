"""Request and response models of the API: what the OpenAPI schema documents.

Timestamps in requests are ISO 8601 text (naive = UTC), as in the input contract's files;
JSON numbers or other types are refused. Row-level rules the schema cannot express
(unknown account ids, duplicates, an account that is not a customer at ``as_of`` under the
model's churn definition) are checked by the data contract and the model's population rule
and answered with 422 naming the row.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr, TypeAdapter, ValidationError, create_model, field_validator, model_validator

from churn.config import SURVEY_RANGES
from churn.serve.limits import REQUEST_LIMITS, RequestLimits

Band = Literal["high", "medium", "low"]
#: ``key`` ascending or ``-key`` descending.
Sort = Literal[
    "rank", "-rank", "churn_probability", "-churn_probability", "revenue_at_risk", "-revenue_at_risk",
    "probability_change", "-probability_change", "account_id", "-account_id",
]  # fmt: skip


TEXT_ONLY = "expected an ISO 8601 date or date-time as text"


def _text_only(value: object) -> object:
    """Timestamps come as text: a bare number would silently be read as seconds since 1970."""
    if not isinstance(value, str):
        raise ValueError(TEXT_ONLY)
    return value


Timestamp = Annotated[datetime, BeforeValidator(_text_only)]
Text = Annotated[StrictStr, Field(min_length=1)]


def _too_long(values: dict[str, object]) -> list[str]:
    """The names of text values over the service's ``max_string_chars`` (``limits.py``)."""
    most = REQUEST_LIMITS.get().max_string_chars
    return [f"{name} is longer than {most} characters" for name, value in values.items() if isinstance(value, str) and len(value) > most]


def _at_most(rows: object, name: str, most: int) -> object:
    """Counted before any row is validated: 500,000 rows are refused without building 500,000 models."""
    if isinstance(rows, list) and len(rows) > most:
        raise ValueError(f"at most {most:,} {name} per request (this service's limit), got {len(rows):,}; send them in several requests")
    return rows


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
    #: Scoring processes running (``--score-workers``); null when POST /score scores in the server process.
    scoring_processes: int | None = None
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

    @model_validator(mode="before")
    @classmethod
    def _few_keys(cls, row: object) -> object:
        """At most the contract's 4 columns and ``max_extra_keys`` attributes (``maxProperties``)."""
        limits = REQUEST_LIMITS.get()
        if isinstance(row, dict):
            if len(row) > len(ACCOUNT_COLUMNS) + limits.max_extra_keys:
                raise ValueError(f"{len(row)} keys; at most {len(ACCOUNT_COLUMNS) + limits.max_extra_keys}: the contract's columns and {limits.max_extra_keys} attributes (this service's limit)")
            if any(len(key) > limits.max_string_chars for key in row):
                raise ValueError(f"an attribute name is longer than {limits.max_string_chars} characters")
        return row

    @model_validator(mode="after")
    def _short_text(self) -> AccountIn:
        problems = _too_long({"account_id": self.account_id, **(self.__pydantic_extra__ or {})})
        if problems:
            raise ValueError("; ".join(problems))
        return self


ACCOUNT_COLUMNS = ("account_id", "signup_at", "churned_at", "mrr")
#: The text fields whose length ``max_string_chars`` bounds (documented as ``maxLength``).
BOUNDED_TEXT = {"AccountIn": ("account_id",), "InteractionIn": ("account_id", "event_type", "channel", "case_id")}


class InteractionIn(BaseModel):
    """An interactions row of the input contract. A request carries thousands: ``ScoreRequest``
    screens them in one pass (``occurred_at`` is text, text within ``max_string_chars``) — a
    Python validator per row cost more than all the rest of validating a request — and
    validates a list that fails the screen with :class:`CheckedInteraction`, which names each
    row's problems."""

    model_config = ConfigDict(extra="forbid")

    account_id: Text
    occurred_at: datetime
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


class CheckedInteraction(InteractionIn):
    """:class:`InteractionIn` with the screen's checks per row, for the errors of a list that failed it."""

    occurred_at: Timestamp

    @model_validator(mode="after")
    def _bounded(self) -> CheckedInteraction:
        problems = _too_long({"account_id": self.account_id, "event_type": self.event_type, "channel": self.channel, "case_id": self.case_id})
        if problems:
            raise ValueError("; ".join(problems))
        return self


_CHECKED_INTERACTIONS = TypeAdapter(list[CheckedInteraction])


def _screened(rows: list[object]) -> bool:
    """Whether every interaction row (a JSON object) has its ``occurred_at`` as text and its
    text values together within ``max_string_chars`` (then each is): one cheap pass, no call
    per row. False sends the list through :class:`CheckedInteraction`, which decides."""
    most = REQUEST_LIMITS.get().max_string_chars
    try:
        for row in rows:
            if type(row) is dict:
                get = row.get
                if type(get("occurred_at")) is not str or len(get("account_id", "")) + len(get("event_type", "")) + len(get("channel") or "") + len(get("case_id") or "") > most:
                    return False
    except TypeError:  # a value without a length (a number): the row's validation names it
        return False
    return True


class ScoreRequest(BaseModel):
    as_of: Timestamp = Field(description="score as of this moment: features use events strictly before it")
    accounts: list[AccountIn] = Field(min_length=1, description="at most the service's max_accounts (default 1,000)")
    interactions: list[InteractionIn] = Field(default_factory=list, description="at most the service's max_interactions (default 100,000)")

    @field_validator("accounts", mode="before")
    @classmethod
    def _few_accounts(cls, rows: object) -> object:
        return _at_most(rows, "accounts", REQUEST_LIMITS.get().max_accounts)

    @field_validator("interactions", mode="before")
    @classmethod
    def _few_interactions(cls, rows: object) -> object:
        rows = _at_most(rows, "interactions", REQUEST_LIMITS.get().max_interactions)
        if isinstance(rows, list) and not _screened(rows):
            _CHECKED_INTERACTIONS.validate_python(rows)  # raises naming every row's problems
        return rows


class _StrictInteraction(InteractionIn):
    """:class:`InteractionIn` in strict mode: for :func:`json_request_model`."""

    model_config = ConfigDict(extra="forbid", strict=True)


@lru_cache(maxsize=8)
def json_request_model(limits: RequestLimits) -> type[BaseModel]:
    """A request model for :func:`clean_json_request`: :class:`ScoreRequest`'s rules with this
    service's limits as pydantic-core constraints (``max_length`` of the lists and of the text
    values) and the interactions in strict mode, so that pydantic-core validates the JSON text
    in one pass without a Python call per row or a Python object per JSON value. Strict accepts
    less than :class:`ScoreRequest` does (``occurred_at`` only as text, numbers only as JSON
    numbers, flags only as JSON booleans), never more, and the same values."""
    most = limits.max_string_chars
    bounded = Annotated[StrictStr, Field(max_length=most)]
    interaction = create_model(
        "JsonInteraction",
        __base__=_StrictInteraction,
        account_id=(Annotated[StrictStr, Field(min_length=1, max_length=most)], ...),
        event_type=(Annotated[StrictStr, Field(min_length=1, max_length=most)], ...),
        channel=(bounded | None, None),
        case_id=(bounded | None, None),
    )
    return create_model(
        "JsonScoreRequest",
        as_of=(Timestamp, ...),
        accounts=(list[AccountIn], Field(min_length=1, max_length=limits.max_accounts)),
        interactions=(list[interaction], Field(default_factory=list, max_length=limits.max_interactions)),  # type: ignore[valid-type]
    )


def clean_json_request(body: bytes) -> ScoreRequest | None:
    """``body`` (JSON text) as the :class:`ScoreRequest` that ``json.loads`` and
    ``ScoreRequest.model_validate`` make of it, when it is clean under the stricter model of
    :func:`json_request_model`; None otherwise — invalid JSON, a row the strict model refuses, a list
    over a limit (pydantic-core stops counting at the limit) — and the caller validates the body
    the usual way, which names the problems exactly as before. Half the CPU of the usual way for
    a request with a year of events (no Python dict per row, no Python call per row)."""
    try:
        fast = json_request_model(REQUEST_LIMITS.get()).model_validate_json(body)
    except ValidationError:
        return None
    values = dict(fast.__dict__)
    return ScoreRequest.model_construct(_fields_set=set(fast.model_fields_set), **values)


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
    # time to churn, as on the weekly list (a model trained with --survival; null otherwise)
    survival_1m: float | None = Field(None, description="chance it is still a customer 1 month after as_of")
    survival_3m: float | None = None
    survival_6m: float | None = None
    survival_12m: float | None = None
    expected_months_24: float | None = Field(None, description="expected months, of the next 24, it is still a customer at the end of")
    remaining_value: float | None = Field(None, description="Σ survival × monthly value over 24 months, discounted (the scoring folder's discount rate)")


class ScoreResponse(BaseModel):
    as_of: str
    model: str
    results: list[ScoredAccount]


def document_limits(schema: dict[str, object], limits: RequestLimits) -> None:
    """Write an app's limits into its OpenAPI schema (in place), so clients, and Schemathesis,
    see exactly what the validators above enforce: ``maxItems``, ``maxLength``, ``maxProperties``."""
    models: dict[str, dict[str, object]] = schema["components"]["schemas"]  # type: ignore[index]
    request = models["ScoreRequest"]["properties"]  # type: ignore[index]
    request["accounts"]["maxItems"] = limits.max_accounts
    request["interactions"]["maxItems"] = limits.max_interactions
    for model, fields in BOUNDED_TEXT.items():
        properties = models[model]["properties"]  # type: ignore[index]
        for name in fields:
            options = properties[name].get("anyOf", [properties[name]])
            for option in options:
                if option.get("type") == "string":
                    option["maxLength"] = limits.max_string_chars
    account = models["AccountIn"]
    account["maxProperties"] = len(ACCOUNT_COLUMNS) + limits.max_extra_keys
    account["propertyNames"] = {"maxLength": limits.max_string_chars}
    for option in account["additionalProperties"]["anyOf"]:  # type: ignore[index]
        if option.get("type") == "string":
            option["maxLength"] = limits.max_string_chars
