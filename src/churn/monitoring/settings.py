"""Monitoring thresholds and the three statuses every check reports (ok, warn, alert)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

STATUS_LEVEL = {"ok": 0, "warn": 1, "alert": 2}


#: Exit code of ``churn score``/``churn monitor --fail-on`` when the verdict reaches the level.
FAIL_EXIT_CODE = 3


@dataclass(frozen=True)
class MonitorConfig:
    """Thresholds of every monitoring check. Defaults suit weekly runs of 500–1M accounts."""

    #: PSI floors: how big a shift must be to matter, on top of the sampling-noise quantile.
    psi_warn: float = 0.10
    psi_alert: float = 0.25
    #: Quantile of (1/n + 1/m)·χ²(bins − 1) added to the floors.
    noise_quantile: float = 0.999
    #: Family-wise error rate of the drift tests (Holm across features).
    alpha: float = 0.01
    #: Shift floors, in reference spreads (≈ standard deviations) the values moved.
    shift_warn: float = 0.20
    shift_alert: float = 0.40
    #: Features drifting at "alert" raise the verdict to alert when together they carry this
    #: share of the model's gain (drift in features the model barely uses is a warning).
    important_gain_share: float = 0.05
    #: Event volume: trailing windows (days before as_of) compared with the baseline before them.
    volume_windows_days: tuple[int, ...] = (2, 7)
    #: 12 weeks always hold the end of a 31-day month: billing-day gaps are in the baseline too.
    volume_baseline_days: int = 84
    #: Missing values: the last ``max(volume_windows_days)`` days against the weeks before.
    missing_baseline_days: int = 28
    volume_drop_warn: float = 0.20
    volume_drop_alert: float = 0.40
    volume_rise_warn: float = 1.00
    #: z-score a volume or missing-rate change must reach (day-to-day variance of the baseline).
    z_threshold: float = 4.0
    #: Windows expecting fewer events than this are not judged (too few to tell).
    min_expected_events: float = 20.0
    missing_rise_warn: float = 0.10
    missing_rise_alert: float = 0.30
    new_category_warn: float = 0.01
    new_category_alert: float = 0.10
    rejected_warn: float = 0.01
    rejected_alert: float = 0.10
    freshness_warn_days: float = 2.0
    freshness_alert_days: float = 7.0
    #: Account alert when the probability rose by more than this (0.10 = 10 points).
    jump_points: float = 0.10
    #: Realized ROC-AUC alert: the interval's upper end is this far below the training value.
    auc_drop_alert: float = 0.05
    #: Calibration warning: actual / expected churn outside [1/x, x] and outside the interval.
    calibration_ratio: float = 1.25
    confidence: float = 0.95
    #: Realized performance is recomputed for at most this many of the latest matured runs.
    max_matured_runs: int = 12
    #: Account alerts copied into monitoring.json (all of them go to alerts.csv).
    alerts_in_document: int = 100

    @property
    def window_days(self) -> int:
        """Days of events before as_of that the data-quality checks read."""
        return max(self.volume_windows_days) + max(self.volume_baseline_days, self.missing_baseline_days)

    def __post_init__(self) -> None:
        if not 0 < self.psi_warn <= self.psi_alert:
            raise ValueError("PSI floors must satisfy 0 < psi_warn <= psi_alert")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not self.volume_windows_days or min(self.volume_windows_days) < 1:
            raise ValueError("volume_windows_days must hold positive day counts")


def worst(statuses: Iterable[str]) -> str:
    """The most severe of some statuses ("ok" when there are none)."""
    level = max((STATUS_LEVEL[s] for s in statuses), default=0)
    return {v: k for k, v in STATUS_LEVEL.items()}[level]


def fails(verdict_level: str, fail_on: str | None) -> bool:
    """True when ``--fail-on`` asks for a non-zero exit at this verdict."""
    return fail_on is not None and STATUS_LEVEL[verdict_level] >= STATUS_LEVEL[fail_on]
