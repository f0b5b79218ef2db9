"""Data quality of the scoring window: event volume per type, missing values, categories the
model never saw, rejected rows and freshness."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from churn.data.rules import OPTIONAL_INTERACTION_COLUMNS
from churn.modeling.profile import category_codes
from churn.monitoring.settings import MonitorConfig

if TYPE_CHECKING:  # pragma: no cover
    from churn.data.contract import TableReport
    from churn.modeling.model import ChurnModel


DQ_COLUMNS = ["check", "subject", "value", "expected", "threshold", "status", "detail"]


def _codes(values: pd.Series, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (−1 for missing) of the ``rows`` (a boolean mask) of a text or
    categorical column, and the labels they index."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy()[rows].astype(np.int64), values.cat.categories.astype("str").to_numpy()
    codes, labels = pd.factorize(values[rows])
    return codes.astype(np.int64), np.asarray(labels, dtype=object).astype(str)


def _days_before(interactions: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Whole days from each event to ``as_of``: 0 for [as_of − 1 day, as_of), 1 for the day
    before, …; −1 at or after as_of. Integer arithmetic on the stored timestamps."""
    t = interactions["occurred_at"]
    scale = pd.Timedelta(1, unit=t.dt.unit).value  # nanoseconds per stored unit (ns, us, ms, s)
    before = as_of.value // scale - t.array.asi8  # > 0 strictly before as_of
    return np.where(before > 0, (before - 1) // (pd.Timedelta(days=1).value // scale), -1)


def daily_event_counts(interactions: pd.DataFrame, *, as_of: pd.Timestamp, days: int) -> pd.DataFrame:
    """Events per day (rows, oldest first; days with none count 0) and event type (columns),
    for the ``days`` days before ``as_of``, plus an ``all events`` column."""
    before = _days_before(interactions, as_of)
    keep = (before >= 0) & (before < days)
    codes, labels = _codes(interactions["event_type"], keep)
    ok = codes >= 0
    day = days - 1 - before[keep][ok]  # 0 = oldest day
    counts = np.bincount(codes[ok] * days + day, minlength=len(labels) * days).reshape(len(labels), days)
    index = pd.date_range(end=as_of - pd.Timedelta(days=1), periods=days, freq="D", name="day")
    frame = pd.DataFrame(counts.T, index=index, columns=pd.Index(labels, name="event_type"))
    frame = frame.loc[:, frame.sum() > 0].sort_index(axis=1)
    frame["all events"] = frame.sum(axis=1)
    return frame


def event_volume(
    interactions: pd.DataFrame, *, as_of: pd.Timestamp, config: MonitorConfig = MonitorConfig(), counts: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Events per type in each trailing window (the last 2 and 7 days) against the weeks before.

    A window is flagged when its count is all of: far off (a drop of ``volume_drop_warn``/
    ``_alert`` or a rise of ``volume_rise_warn``); beyond noise (``z_threshold`` standard
    deviations, from the baseline's own day-to-day variance, at least Poisson); and
    *unprecedented* — below the lowest (above the highest) total of any stretch of as many
    days in the baseline. The last condition keeps calendar cycles quiet: a month whose last
    days bill nobody, or a weekend, happened in the baseline too. ``counts`` may hold
    :func:`daily_event_counts` of the window, if already computed.
    """
    recent = max(config.volume_windows_days)
    total = recent + config.volume_baseline_days
    if len(interactions) == 0:
        return pd.DataFrame(columns=DQ_COLUMNS)
    counts = daily_event_counts(interactions, as_of=as_of, days=total) if counts is None else counts
    first = interactions["occurred_at"].min()
    covered = int(np.clip(np.ceil((as_of - first) / pd.Timedelta(days=1)), 0, total))  # days with data in them
    baseline = counts.iloc[total - covered : total - recent]
    rows = []
    for k in sorted(config.volume_windows_days):
        observed = counts.iloc[total - k :].sum().to_numpy(dtype=float)
        if len(baseline) < max(7, k + 1):
            for name, obs in zip(counts.columns, observed):
                rows.append({"check": "volume", "subject": f"{name}, last {k} days", "value": obs, "expected": None, "threshold": None, "status": "ok", "detail": f"only {len(baseline)} days of history before the window: not judged"})
            continue
        mean = baseline.mean().to_numpy(dtype=float)
        var = baseline.var(ddof=1).to_numpy(dtype=float)
        stretches = baseline.rolling(k).sum().iloc[k - 1 :]
        lowest, highest = stretches.min().to_numpy(dtype=float), stretches.max().to_numpy(dtype=float)
        expected = k * mean
        spread = np.sqrt(k * np.maximum(var, mean))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = observed / expected
            z = (observed - expected) / spread
        drop = 1 - ratio
        low = (expected >= config.min_expected_events) & (z <= -config.z_threshold) & (observed < lowest)
        high = (expected >= config.min_expected_events) & (z >= config.z_threshold) & (observed > highest)
        status = np.select(
            [low & (drop >= config.volume_drop_alert), low & (drop >= config.volume_drop_warn), high & (ratio - 1 >= config.volume_rise_warn)],
            ["alert", "warn", "warn"],
            default="ok",
        )
        for i, name in enumerate(counts.columns):
            judged = expected[i] >= config.min_expected_events
            change = f"{100 * (ratio[i] - 1):+.0f} %, z = {z[i]:+.1f}; {k}-day totals before: {lowest[i]:,.0f}–{highest[i]:,.0f}" if judged else "too few events to judge"
            rows.append(
                {
                    "check": "volume",
                    "subject": f"{name}, last {k} days",
                    "value": observed[i],
                    "expected": expected[i],
                    "threshold": config.volume_drop_alert,
                    "status": status[i],
                    "detail": f"{observed[i]:,.0f} events vs {expected[i]:,.0f} expected from the {len(baseline)} days before ({change})",
                }
            )
    return pd.DataFrame(rows, columns=DQ_COLUMNS)


def interaction_missing(interactions: pd.DataFrame, *, as_of: pd.Timestamp, config: MonitorConfig = MonitorConfig()) -> pd.DataFrame:
    """Share of missing values per event type and optional column: the last days against
    the baseline weeks. Only pairs the baseline uses (a column some events of that type
    fill) are judged — a wait time is never expected on a login."""

    recent = max(config.volume_windows_days)
    total = recent + config.missing_baseline_days
    columns = [c for c in OPTIONAL_INTERACTION_COLUMNS if c in interactions.columns]
    if not columns or len(interactions) == 0:
        return pd.DataFrame(columns=DQ_COLUMNS)
    before = _days_before(interactions, as_of)
    rows = (before >= 0) & (before < total)
    codes, labels = _codes(interactions["event_type"], rows)
    ok = codes >= 0
    key = codes[ok] * 2 + (before[rows][ok] < recent)  # (event type, baseline | recent)
    size = np.bincount(key, minlength=2 * len(labels)).reshape(-1, 2).astype(float)
    nulls = np.stack(
        [np.bincount(key, weights=interactions[c].isna().to_numpy()[rows][ok], minlength=2 * len(labels)).reshape(-1, 2) for c in columns],
        axis=1,
    )  # event type × column × period
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = nulls / size[:, None, :]
    frame = pd.DataFrame(
        {
            "event_type": np.repeat(labels, len(columns)),
            "column": np.tile(columns, len(labels)),
            "baseline": shares[:, :, 0].ravel(),
            "recent": shares[:, :, 1].ravel(),
            "n_baseline": np.repeat(size[:, 0], len(columns)),
            "n_recent": np.repeat(size[:, 1], len(columns)),
        }
    )
    frame = frame[(frame["baseline"] < 1) & frame["recent"].notna()].reset_index(drop=True)
    status = _missing_rise_status(frame["recent"], frame["n_recent"], frame["baseline"], frame["n_baseline"], config)
    return pd.DataFrame(
        {
            "check": "missing",
            "subject": frame["event_type"] + " · " + frame["column"],
            "value": frame["recent"].to_numpy(),
            "expected": frame["baseline"].to_numpy(),
            "threshold": config.missing_rise_alert,
            "status": status,
            "detail": [
                f"missing in {100 * r:.1f} % of the last {recent} days' events vs {100 * b:.1f} % before"
                for r, b in zip(frame["recent"], frame["baseline"])
            ],
        },
        columns=DQ_COLUMNS,
    )


def _missing_rise_status(recent: pd.Series, n_recent: pd.Series, baseline: pd.Series, n_baseline: pd.Series, config: MonitorConfig) -> np.ndarray:
    """ok/warn/alert per row: a missing-value rate that rose by a set amount *and* clearly
    (two-proportion z-test against the pooled rate), so small samples do not cry wolf."""
    pooled = (recent * n_recent + baseline * n_baseline) / (n_recent + n_baseline)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_recent + 1 / n_baseline))
    rise = recent - baseline
    z = (rise / se.where(se > 0)).fillna(0.0)
    clear = z >= config.z_threshold
    return np.select([(rise >= config.missing_rise_alert) & clear, (rise >= config.missing_rise_warn) & clear], ["alert", "warn"], default="ok")


def feature_missing(drift: pd.DataFrame, config: MonitorConfig = MonitorConfig()) -> pd.DataFrame:
    """Missing-value rate of each model feature now against the training reference."""
    if drift.empty:
        return pd.DataFrame(columns=DQ_COLUMNS)
    r, c = drift["missing_reference"].astype(float), drift["missing_current"].astype(float)
    status = _missing_rise_status(c, drift["n_current"].astype(float), r, drift["n_reference"].astype(float), config)
    return pd.DataFrame(
        {
            "check": "missing",
            "subject": "feature " + drift["feature"],
            "value": c.to_numpy(),
            "expected": r.to_numpy(),
            "threshold": config.missing_rise_alert,
            "status": status,
            "detail": [f"missing for {100 * a:.1f} % of accounts vs {100 * b:.1f} % in training" for a, b in zip(c, r)],
        },
        columns=DQ_COLUMNS,
    )


def new_categories(
    values: Mapping[str, pd.Series],
    known: Mapping[str, Sequence[str]],
    config: MonitorConfig = MonitorConfig(),
) -> pd.DataFrame:
    """Share of values the model has never seen, per column (``values`` and ``known`` by
    column name): the model treats them as missing."""
    rows = []
    for column, series in values.items():
        if column not in known or len(series) == 0:
            continue
        present = series.notna().to_numpy()
        codes = category_codes(series, list(known[column]))
        unseen = present & (codes < 0)
        share = float(unseen.sum() / len(series))
        examples = pd.Series(series[unseen]).astype("str").value_counts().head(3)
        rows.append(
            {
                "check": "new_category",
                "subject": column,
                "value": share,
                "expected": 0.0,
                "threshold": config.new_category_alert,
                "status": "alert" if share >= config.new_category_alert else "warn" if share >= config.new_category_warn else "ok",
                "detail": (f"{unseen.sum():,} rows ({100 * share:.1f} %) with values the model never saw: " + ", ".join(f"{k} ({v:,})" for k, v in examples.items()))
                if unseen.any()
                else "no unseen values",
            }
        )
    return pd.DataFrame(rows, columns=DQ_COLUMNS)


def rejected_rows(reports: Iterable["TableReport"], config: MonitorConfig = MonitorConfig()) -> pd.DataFrame:
    """Share of rows the data contract rejected, per table, with the main reasons."""
    rows = []
    for rep in reports:
        if rep.rows_read == 0:
            continue
        share = rep.rejected_total / rep.rows_read
        reasons = ", ".join(f"{reason} ({count:,})" for reason, count in sorted(rep.rejected.items(), key=lambda kv: -kv[1])[:3])
        rows.append(
            {
                "check": "rejected_rows",
                "subject": rep.table,
                "value": share,
                "expected": 0.0,
                "threshold": config.rejected_alert,
                "status": "alert" if share >= config.rejected_alert else "warn" if share >= config.rejected_warn else "ok",
                "detail": f"{rep.rejected_total:,} of {rep.rows_read:,} rows rejected" + (f": {reasons}" if reasons else ""),
            }
        )
    return pd.DataFrame(rows, columns=DQ_COLUMNS)


def freshness(interactions: pd.DataFrame, *, as_of: pd.Timestamp, config: MonitorConfig = MonitorConfig()) -> pd.DataFrame:
    """Days between the latest event before ``as_of`` and ``as_of``."""
    before = interactions["occurred_at"][interactions["occurred_at"] < as_of]
    if len(before) == 0:
        return pd.DataFrame(
            [{"check": "freshness", "subject": "interactions", "value": None, "expected": None, "threshold": config.freshness_alert_days, "status": "alert", "detail": "no event before as_of in the scoring window"}],
            columns=DQ_COLUMNS,
        )
    latest = before.max()
    days = (as_of - latest) / pd.Timedelta(days=1)
    status = "alert" if days > config.freshness_alert_days else "warn" if days > config.freshness_warn_days else "ok"
    return pd.DataFrame(
        [{"check": "freshness", "subject": "interactions", "value": days, "expected": None, "threshold": config.freshness_alert_days, "status": status, "detail": f"latest event {latest:%Y-%m-%d %H:%M} UTC, {days:.1f} days before as_of"}],
        columns=DQ_COLUMNS,
    )


def data_quality(
    *,
    as_of: pd.Timestamp,
    interactions: pd.DataFrame | None = None,
    accounts: pd.DataFrame | None = None,
    reports: Iterable["TableReport"] = (),
    known: Mapping[str, Sequence[str]] | None = None,
    drift: pd.DataFrame | None = None,
    volume: pd.DataFrame | None = None,
    config: MonitorConfig = MonitorConfig(),
) -> pd.DataFrame:
    """Every data-quality check that its inputs allow, one row per check and subject.

    ``interactions``: the events of the scoring window (volume, missing values, new event
    types/channels, freshness); ``accounts``: the scored accounts' rows (new attribute
    values); ``reports``: the data contract's reports (rejected rows); ``known``: the values
    the model knows per column; ``drift``: :func:`churn.monitoring.drift.feature_drift`'s table (feature missing
    rates); ``volume``: :func:`daily_event_counts` of the volume window, if already computed.
    """
    known = known or {}
    parts = [rejected_rows(reports, config)]
    if interactions is not None and len(interactions):
        parts += [event_volume(interactions, as_of=as_of, config=config, counts=volume), interaction_missing(interactions, as_of=as_of, config=config), freshness(interactions, as_of=as_of, config=config)]
        before = _days_before(interactions, as_of)
        recent = (before >= 0) & (before < max(config.volume_windows_days))
        parts.append(new_categories({c: interactions[c][recent] for c in ("event_type", "channel") if c in interactions.columns}, known, config))
    if accounts is not None:
        parts.append(new_categories({c: accounts[c] for c in accounts.columns if c in known}, known, config))
    if drift is not None:
        parts.append(feature_missing(drift, config))
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True)[DQ_COLUMNS] if parts else pd.DataFrame(columns=DQ_COLUMNS)


def model_known_values(model: "ChurnModel") -> dict[str, list[str]]:
    """Values the model knows per raw column: event types, channels, attribute categories."""
    spec = model.spec
    known = {"event_type": list(spec.event_types), "channel": list(spec.channels)}
    known.update({name: list(cats) for name, cats in spec.categorical_attributes})
    return known


def monitoring_window(interactions: pd.DataFrame, as_of: pd.Timestamp, config: MonitorConfig = MonitorConfig()) -> pd.DataFrame:
    """The events the data-quality checks read: ``config.window_days`` before ``as_of``
    (one pass over the scoring data, which holds a year of events)."""
    t = interactions["occurred_at"]
    return interactions[((t >= as_of - pd.Timedelta(days=config.window_days)) & (t < as_of)).to_numpy()]
