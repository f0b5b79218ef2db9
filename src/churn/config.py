"""Frozen, typed settings with sane defaults, the churn definition and the driver families.

The bottom of the house: every stage imports it and it imports nothing of churn. Every stage
takes its settings explicitly. Nothing here reads the environment; the only files it reads
are settings files, when :func:`load_settings` is asked to (``--config``, the data folder's
``churn.toml``, and ``churn.toml`` / ``pyproject.toml`` in the working directory) — importing
it has no side effects.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal, get_args

import pandas as pd

#: Channels seen in practice. Self-service is the only unassisted one.
CHANNELS: tuple[str, ...] = (
    "phone",
    "email",
    "chat",
    "chatbot",
    "social",
    "messaging",
    "video",
    "self_service",
)
ASSISTED_CHANNELS: frozenset[str] = frozenset({"phone", "email", "chat", "social", "messaging", "video"})
#: Channels whose wait is a response time (hours are normal), not a queue in front of a person.
ASYNC_CHANNELS: frozenset[str] = frozenset({"email", "social"})

SURVEY_RANGES: dict[str, tuple[int, int]] = {"ces": (1, 7), "csat": (1, 5), "nps": (0, 10)}


_ISO_DATE = re.compile(r"^\d{4}-?\d{2}-?\d{2}(?:$|[T ])")


def to_utc(value: str | pd.Timestamp) -> pd.Timestamp:
    """Parse a date/time; naive values are taken as UTC, aware ones converted to UTC.

    Text must be ISO 8601 (``2024-04-03``, ``2024-04-03T10:00:00+02:00``): ``03/04/2024`` would
    be read month-first and ``13/04/2024`` day-first, so the day/month order is never guessed."""
    if isinstance(value, str):
        value = value.strip()
        if not _ISO_DATE.match(value):
            raise ValueError(f"{value!r} is not an ISO 8601 date (YYYY-MM-DD, optionally THH:MM[:SS] and an offset): day/month order is never guessed")
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        return ts.tz_localize("UTC")
    return ts.tz_convert("UTC")


@dataclass(frozen=True)
class ChurnDefinition:
    """What "churn" means for a run; written into every training run and model bundle.

    ``kind="auto"`` picks subscription churn when any account has ``churned_at`` and
    inactivity churn (no qualifying event within the horizon) otherwise.
    """

    horizon_days: int = 30
    kind: Literal["auto", "subscription", "inactivity"] = "auto"
    #: Event types that count as "still active" for inactivity churn; empty = any event.
    #: Any sequence of names, or one name as text; kept as a sorted set (order and repeats
    #: mean nothing, so two runs listing the same types define the same churn).
    activity_event_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.horizon_days <= 0:
            raise ValueError(f"horizon_days must be positive, got {self.horizon_days}")
        types = self.activity_event_types
        if isinstance(types, str):  # "login" is one type, not the letters l, o, g, i, n
            types = (types,)
        object.__setattr__(self, "activity_event_types", tuple(sorted({str(t) for t in types})))

    @property
    def horizon(self) -> pd.Timedelta:
        return pd.Timedelta(days=self.horizon_days)

    def resolve_kind(self, accounts: pd.DataFrame) -> Literal["subscription", "inactivity"]:
        if self.kind != "auto":
            return self.kind
        has_churn = "churned_at" in accounts.columns and accounts["churned_at"].notna().any()
        return "subscription" if has_churn else "inactivity"

    def resolved(self, accounts: pd.DataFrame) -> "ChurnDefinition":
        """The same definition with ``kind`` decided on the whole accounts table.

        Resolve once on all accounts before computing on partitions: a partition with no
        churned account would otherwise decide "inactivity" on its own."""
        return self if self.kind != "auto" else replace(self, kind=self.resolve_kind(accounts))

    def as_dict(self) -> dict[str, object]:
        return {
            "horizon_days": self.horizon_days,
            "kind": self.kind,
            "activity_event_types": list(self.activity_event_types),
        }


@dataclass(frozen=True)
class FeatureConfig:
    """Knobs of the point-in-time feature pipeline."""

    windows_days: tuple[int, ...] = (30, 90, 365)
    #: A wait longer than this on a live channel (phone, chat, ...) is a "long wait".
    long_wait_seconds: float = 600.0
    #: ... and longer than this on an asynchronous channel (email, social).
    long_wait_seconds_async: float = 86_400.0
    repeat_window_days: int = 7
    support_event_type: str = "support_contact"
    invoice_event_type: str = "invoice"
    #: At most this many event types / channels get their own count columns (most frequent first).
    max_event_types: int = 12

    @property
    def lookback_days(self) -> int:
        """How far back any feature looks: the widest window (trends need 120 days)."""
        return max(max(self.windows_days), 120)


@dataclass(frozen=True)
class TrainConfig:
    """Model training settings. Defaults suit 1k–1M accounts on a laptop."""

    seed: int = 7
    #: LightGBM threads; 0 = one per core. On a machine shared with other busy processes,
    #: fewer threads than cores avoid OpenMP spinning against them.
    n_jobs: int = 0
    #: Upper bound; early stopping on held-out account folds picks the real number.
    n_estimators: int = 2000
    learning_rate: float = 0.03
    num_leaves: int = 15
    #: Leaf size scales with the data (about one row in a thousand), within these bounds:
    #: churners are few, and tiny leaves memorise them; on small tables big leaves underfit.
    min_child_samples_bounds: tuple[int, int] = (10, 100)
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    #: Smoothing of categorical splits: a 50-state column must not memorise small states.
    cat_smooth: float = 50.0
    cat_l2: float = 10.0
    reg_lambda: float = 0.0
    early_stopping_rounds: int = 50
    #: Account folds that pick the number of trees and give the out-of-fold scores the
    #: calibration is fitted on.
    calibration_folds: int = 3
    #: Evaluation: the latest cutoffs each tested by a model trained on cutoffs matured before it.
    evaluation_folds: int = 3
    #: Evaluation of a single cutoff (a snapshot): stratified k-fold cross-validation by account.
    cv_folds: int = 5
    #: Number of monthly cutoffs used when none are given and the history allows them.
    default_cutoff_count: int = 12
    #: The leakage sentinel stops training when one feature alone reaches this ROC-AUC.
    leakage_auc: float = 0.97
    #: Features the sentinel lets through (after the user has checked them).
    allow_features: tuple[str, ...] = ()
    #: A challenger replaces the champion only if better by this share of the champion's score.
    promotion_margin: float = 0.01
    #: Optional hyperparameter search (Optuna): trials per tuning run, and the time budget of
    #: all tuning in one training run (split over the evaluation folds and the final fit).
    tune_trials: int = 0
    tune_seconds: float = 600.0
    #: Also fit the time-to-churn model (survival curves, remaining value): ``churn train --survival``.
    survival: bool = False

    def min_child_samples(self, rows: int) -> int:
        low, high = self.min_child_samples_bounds
        return int(min(high, max(low, rows // 1000)))


@dataclass(frozen=True)
class ProfitConfig:
    """Expected maximum profit (EMP, Verbraken et al. 2013) of a retention campaign.

    A contacted churner accepts the offer with a probability drawn from Beta(alpha, beta);
    every contact costs ``contact_cost``, every accepted offer ``incentive_cost``; a retained
    customer is worth its lifetime value (CLV) = ``clv_years`` × annual value (12 × the value
    column) or ``default_clv`` where the data has no value column."""

    alpha: float = 6.0
    beta: float = 14.0
    incentive_cost: float = 10.0
    contact_cost: float = 1.0
    clv_years: float = 1.0
    default_clv: float = 200.0
    value_column: str = "mrr"


#: What orders the risk list: ``risk`` (probability), ``value`` (probability × value) or ``uplift``
#: (the expected value of a call, churn.outreach.policy); ``probability`` and ``revenue_at_risk``
#: are the older names of risk and value. The CLI offers the first three (RANKINGS).
RankBy = Literal["risk", "value", "uplift", "probability", "revenue_at_risk"]
RANKINGS: tuple[str, ...] = get_args(RankBy)[:3]


@dataclass(frozen=True)
class ScoreConfig:
    """Batch scoring and outreach settings."""

    capacity: int = 200
    control_share: float = 0.1
    seed: int = 7
    #: Probability thresholds: >= high → "high", >= medium → "medium", else "low".
    high_threshold: float = 0.25
    medium_threshold: float = 0.10
    #: None: value (risk × value) until the uplift gate passes, then uplift (churn.outreach.policy.choose_ranking).
    rank_by: RankBy | None = None
    #: Column holding monthly value; annual value = 12 × this. Missing → value 1 per account.
    value_column: str = "mrr"
    #: Annual discount rate of the remaining value (``--discount-rate``): money a year from now is
    #: worth 1 / (1 + rate) of money today. Used when the model has a time-to-churn part.
    discount_rate: float = 0.10
    top_reasons: int = 3
    #: Exact TreeSHAP reasons for at most this many accounts (outreach list first, then high band).
    max_exact_reasons: int = 100_000
    reason_chunk_rows: int = 20_000
    #: A run waits this long for another run writing to the same folder, then stops.
    lock_timeout_seconds: float = 900.0

    def __post_init__(self) -> None:
        if not 0 <= self.control_share < 1:
            raise ValueError(f"control_share must be in [0, 1), got {self.control_share}")
        if self.capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {self.capacity}")
        if not 0 <= self.medium_threshold <= self.high_threshold <= 1:
            raise ValueError("thresholds must satisfy 0 <= medium <= high <= 1")
        if self.lock_timeout_seconds < 0:
            raise ValueError(f"lock_timeout_seconds must be >= 0, got {self.lock_timeout_seconds}")


@dataclass(frozen=True)
class UpliftConfig:
    """How the effect of outreach is judged (intervals, and the power sentence)."""

    #: 1 − confidence of the intervals; also the two-sided test level of the power sentence.
    alpha: float = 0.05
    #: Power the sentence asks for ("… needed to detect a drop …").
    power: float = 0.8
    #: The drop worth detecting, relative to the control group's churn (0.25: 20 % → 15 %).
    relative_reduction: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1 or not 0 < self.power < 1 or not 0 < self.relative_reduction < 1:
            raise ValueError("alpha, power and relative_reduction must each be in (0, 1)")


@dataclass(frozen=True)
class Settings:
    """Everything a run needs, in one frozen object."""

    churn: ChurnDefinition = field(default_factory=ChurnDefinition)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    profit: ProfitConfig = field(default_factory=ProfitConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)


# --------------------------------------------------------------------------- the data's own settings

#: Where project settings are looked for, weakest first; later sources override earlier ones.
SETTINGS_FILE = "churn.toml"

#: The registered model (MLflow) a business's models are kept under, when its settings name none.
DEFAULT_MODEL_NAME = "churn"
#: A model name is part of a ``models:/NAME@alias`` URI and of the bundle's file name.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class SettingsError(ValueError):
    """A settings file or option that cannot be used; the message names the file and key."""


#: ``date_format`` values for integer timestamps: seconds or milliseconds since 1970-01-01 UTC.
UNIX_TIME_UNITS = {"unix_s": "s", "unix_ms": "ms"}


#: URL schemes read as a database (``--data postgresql://…``), not as a filesystem; a
#: ``dialect+driver://`` URL (SQLAlchemy's form) is a database too.
DATABASE_SCHEMES = ("postgresql", "postgres", "duckdb", "sqlite")


def database_scheme(location: object) -> str | None:
    """The scheme of a database URL (``postgresql``, ``duckdb``, ``mysql+pymysql``, …), else None."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", location) if isinstance(location, str) else None
    if match is None:
        return None
    scheme = match.group(1).lower()
    return scheme if scheme in DATABASE_SCHEMES or "+" in scheme else None


@dataclass(frozen=True)
class SourceTables:
    """Where each table of a database source is: a table name, or an SQL query (any value with
    a space in it) read as a subquery — the ``[source]`` table of ``churn.toml``. ``schema``
    qualifies the table names (not the queries)."""

    accounts: str = "accounts"
    interactions: str = "interactions"
    attribute_history: str = "attribute_history"
    schema: str | None = None

    def is_query(self, table: str) -> bool:
        return any(ch.isspace() for ch in getattr(self, table).strip())


def _source_tables(value: object, source: str) -> SourceTables:
    known = {f.name for f in fields(SourceTables)}
    if not isinstance(value, dict) or not all(isinstance(v, str) and v.strip() for v in value.values()):
        raise SettingsError(f"{source}: [source] must be a table of names or SQL queries ({', '.join(sorted(known))})")
    unknown = sorted(set(value) - known)
    if unknown:
        raise SettingsError(f"{source}: unknown key(s) {', '.join(unknown)} in [source] (known: {', '.join(sorted(known))})")
    return SourceTables(**{k: v.strip() for k, v in value.items()})


@dataclass(frozen=True)
class DataSettings:
    """What a data export says about itself: how to read it, which account attributes are
    honest at which cutoffs, and which registered model is its business's.

    The accounts table is an export: its attribute values (plan, mrr, status, ...) are the
    values *at the export date*. Using them at an earlier cutoff leaks the future (a
    ``status`` of "cancelled" is the classic case). So an attribute is used at a cutoff only
    when its value at that cutoff is known:

    * it has an ``attribute_history`` table (one row per change; the value valid at the cutoff
      is used), or
    * it is declared in ``static_attributes`` (it never changes after signup: signup channel,
      country), or
    * the cutoff is at or after ``attributes_as_of`` (the export date; default: the end of the
      data) — a snapshot scored on the day it was exported.
    """

    #: strftime layout of non-ISO timestamps (e.g. ``%d/%m/%Y``); ISO 8601 when None.
    date_format: str | None = None
    static_attributes: tuple[str, ...] = ()
    #: When the accounts table's attribute values were taken; default: the end of the data.
    attributes_as_of: pd.Timestamp | None = None
    #: When the export was taken (end of the observed history); default: the day after the latest accepted interaction date.
    data_end: pd.Timestamp | None = None
    #: The registered model this business's champion is kept under: one MLflow store holds
    #: several businesses, each scored with its own champion.
    model_name: str = DEFAULT_MODEL_NAME
    #: The tables (or queries) of a database given as ``--data``: ``[source]`` in churn.toml.
    source: SourceTables = field(default_factory=SourceTables)

    def with_overrides(self, **options: object) -> "DataSettings":
        """A copy with every option that is not None replacing the file's value."""
        given = {k: v for k, v in options.items() if v is not None}
        return replace(self, **_coerce(given, "command-line option")) if given else self


def _coerce(raw: dict[str, object], source: str) -> dict[str, object]:
    known = {f.name for f in fields(DataSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(f"{source}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    out: dict[str, object] = {}
    for key, value in raw.items():
        if key in ("attributes_as_of", "data_end"):
            try:
                out[key] = to_utc(str(value))
            except (ValueError, TypeError):
                raise SettingsError(f"{source}: {key} = {value!r} is not a date (use YYYY-MM-DD)") from None
        elif key == "static_attributes":
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
                raise SettingsError(f"{source}: static_attributes must be a list of column names")
            out[key] = tuple(v.strip() for v in items if v.strip())
        elif key == "date_format":
            if not isinstance(value, str) or ("%" not in value and value not in UNIX_TIME_UNITS):
                raise SettingsError(
                    f"{source}: date_format = {value!r} is neither a strftime layout such as '%d/%m/%Y' nor {' / '.join(UNIX_TIME_UNITS)}"
                )
            out[key] = value
        elif key == "source":
            out[key] = _source_tables(value, source)
        elif key == "model_name":
            if not isinstance(value, str) or not _MODEL_NAME.match(value):
                raise SettingsError(
                    f"{source}: model_name = {value!r} is not a model name (letters, digits, '_', '-' and '.'; it names the registered model and its bundle file)"
                )
            out[key] = value
    return out


def _read_toml(source: Path | str, table: tuple[str, ...] = ()) -> dict[str, object] | None:
    """A settings file's table, or None when there is no such file. A string is a URL — the
    ``churn.toml`` of a data folder given as a URL — and is read through fsspec."""
    try:
        if isinstance(source, Path):
            text = source.read_text(encoding="utf-8") if source.is_file() else None
        else:
            from fsspec.core import url_to_fs

            fs, path = url_to_fs(source)
            text = fs.cat_file(path).decode("utf-8") if fs.isfile(path) else None
        raw: dict[str, object] = tomllib.loads(text) if text is not None else {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{source}: cannot read settings ({exc})") from None
    if text is None:
        return None
    for key in table:
        raw = raw.get(key, {})  # type: ignore[assignment]
    return raw


def load_settings(data_dir: str | Path | None = None, config_file: str | Path | None = None, cwd: str | Path | None = None) -> DataSettings:
    """Project settings, weakest first: ``[tool.churn]`` in ./pyproject.toml, ./churn.toml,
    the data folder's own churn.toml (an export describing itself; read through fsspec when
    the folder is a URL such as ``s3://bucket/raw``), then ``config_file``."""
    cwd = Path(cwd) if cwd is not None else Path.cwd()
    sources: list[tuple[Path | str, tuple[str, ...]]] = [(cwd / "pyproject.toml", ("tool", "churn")), (cwd / SETTINGS_FILE, ())]
    if data_dir is not None:
        url = isinstance(data_dir, str) and "://" in data_dir  # a Path would collapse the URL's "//"
        if database_scheme(data_dir) is None:  # a database has no churn.toml of its own
            sources.append((f"{str(data_dir).rstrip('/')}/{SETTINGS_FILE}" if url else Path(data_dir) / SETTINGS_FILE, ()))
    if config_file is not None:
        if not Path(config_file).is_file():
            raise SettingsError(f"{config_file}: no such settings file")
        sources.append((Path(config_file), ()))
    settings = DataSettings()
    seen: set[str] = set()
    for source, table in sources:
        key = str(source.resolve()) if isinstance(source, Path) else source
        raw = None if key in seen else _read_toml(source, table)
        if raw is not None:
            seen.add(key)
            settings = replace(settings, **_coerce(raw, str(source)))
    return settings


def definition_from_dict(raw: dict[str, object]) -> ChurnDefinition:
    """The churn definition as a model bundle or a run record stores it (``ChurnDefinition``
    fields as JSON values)."""
    return ChurnDefinition(
        horizon_days=int(raw["horizon_days"]),  # type: ignore[call-overload]
        kind=raw["kind"],  # type: ignore[arg-type]
        activity_event_types=raw.get("activity_event_types", ()),  # type: ignore[arg-type]
    )


#: Driver families a customer-success team can act on in a call; the rest is context.
ACTIONABLE_DRIVERS = frozenset({"support_effort", "usage", "survey", "billing"})


#: Every driver family, with what it means (the playbook maps each to an action).
DRIVERS: dict[str, str] = {
    "support_effort": "support effort: waits, repeat contacts, channel switches, transfers, unresolved cases",
    "usage": "product usage and purchasing falling off",
    "survey": "survey answers (CES, CSAT, NPS)",
    "billing": "billing changes: price rises, spend changes",
    "contract": "contract terms (context)",
    "plan": "plan, tier or price level (context)",
    "tenure": "how long the account has been a customer (context)",
    "account": "other account attributes (context)",
}


# --------------------------------------------------------------------------- the machine

#: Where a container's CPU quota is (cgroup v2, the process in its own cgroup namespace, as in
#: Docker and Kubernetes: "QUOTA PERIOD", or "max PERIOD" for none). Not read: cgroup v1's
#: cpu.cfs_quota_us, or a quota set on a parent cgroup seen from the host's namespace.
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cores() -> int:
    """The cores this process may keep busy: those it may run on (its affinity: a test worker's
    or a container's cpuset), and no more than whole CPUs of its container's quota — a container
    limited to one CPU on an 8-core host sees 8 cores by affinity, and 8 threads there only take
    turns. Feature slices, LightGBM's threads and the scoring processes are sized by it."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = CPU_MAX.read_text().split()[:2]
        return max(1, min(cores, int(quota) // int(period))) if quota != "max" else max(1, cores)
    except (OSError, ValueError):  # no cgroup v2 file (other systems), or not the form above
        return max(1, cores)
