"""Frozen, typed settings with sane defaults.

Every stage takes its settings explicitly; nothing here reads the environment or
touches the disk, so importing the package has no side effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

#: Channels seen in practice (DESIGN.md). Self-service is the only unassisted one.
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


def to_utc(value: str | pd.Timestamp) -> pd.Timestamp:
    """Parse a date/time; naive values are taken as UTC, aware ones converted to UTC."""
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
    activity_event_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.horizon_days <= 0:
            raise ValueError(f"horizon_days must be positive, got {self.horizon_days}")

    @property
    def horizon(self) -> pd.Timedelta:
        return pd.Timedelta(days=self.horizon_days)

    def resolve_kind(self, accounts: pd.DataFrame) -> Literal["subscription", "inactivity"]:
        if self.kind != "auto":
            return self.kind
        has_churn = "churned_at" in accounts.columns and accounts["churned_at"].notna().any()
        return "subscription" if has_churn else "inactivity"

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
    #: Upper bound; early stopping on the validation slice picks the real number.
    n_estimators: int = 1000
    learning_rate: float = 0.03
    #: Small, well-populated leaves: churners are few, and deep trees memorise them.
    num_leaves: int = 15
    min_child_samples: int = 100
    subsample: float = 0.8
    colsample_bytree: float = 0.5
    early_stopping_rounds: int = 100
    #: Number of monthly cutoffs used when none are given.
    default_cutoff_count: int = 12
    #: Share of accounts kept for validation/test when no time split is possible (snapshot data).
    snapshot_holdout_share: float = 0.2


@dataclass(frozen=True)
class ScoreConfig:
    """Batch scoring and outreach settings."""

    capacity: int = 200
    control_share: float = 0.1
    seed: int = 7
    #: Probability thresholds: >= high → "high", >= medium → "medium", else "low".
    high_threshold: float = 0.25
    medium_threshold: float = 0.10
    rank_by: Literal["revenue_at_risk", "probability"] = "revenue_at_risk"
    #: Column holding monthly value; annual value = 12 × this. Missing → value 1 per account.
    value_column: str = "mrr"
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
    score: ScoreConfig = field(default_factory=ScoreConfig)
