"""Training: time split without leakage, LightGBM vs. baselines, calibration, backtest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import ChurnDefinition, TrainConfig
from churn.labels import LABEL, build_training_table, parse_cutoffs
from churn.train import MissingFeaturesError, backtest, split_by_time, summarise_backtest, train

EFFORT_DRIVERS = ("repeat_contacts", "channel_switches", "long_waits", "unresolved", "transfers", "n_support_contact", "cases_")


def test_lightgbm_beats_both_baselines(trained) -> None:  # type: ignore[no-untyped-def]
    m = trained.metrics
    print(f"\n{m.round(4).to_string()}")
    assert trained.split.kind == "time"
    for metric in ("pr_auc", "lift_top10"):
        assert m.loc["model", metric] > m.loc["logistic", metric], metric
        assert m.loc["model", metric] > m.loc["rule", metric], metric
    assert trained.beats_baselines()


def test_probabilities_are_calibrated(trained) -> None:  # type: ignore[no-untyped-def]
    m = trained.metrics.loc["model"]
    assert m["ece"] < 0.01
    # mean prediction close to the observed churn rate of the later test slice
    assert abs(trained.test_scores["model"].mean() - m["base_rate"]) < 0.01
    assert trained.model.calibrator.method in ("isotonic", "sigmoid")


def test_top_importances_include_planted_effort_drivers(trained) -> None:  # type: ignore[no-untyped-def]
    top = trained.model.importance().head(10).index
    effort = [f for f in top if f.startswith(EFFORT_DRIVERS)]
    assert len(effort) >= 3, list(top)


def test_time_split_never_looks_ahead(training_data) -> None:  # type: ignore[no-untyped-def]
    _, _, table = training_data
    split = split_by_time(table, horizon_days=30)
    train_cuts, val_cut, test_cut = split.train["as_of"].unique(), split.validation["as_of"].unique(), split.test["as_of"].unique()
    assert len(val_cut) == 1 and len(test_cut) == 1
    assert train_cuts.max() < val_cut[0] < test_cut[0]
    # labels of training rows have matured before the validation cutoff, validation's before the test's
    assert (train_cuts + pd.Timedelta(days=30) <= val_cut[0]).all()
    assert val_cut[0] + pd.Timedelta(days=30) <= test_cut[0]


def test_overlapping_horizons_are_purged(training_data) -> None:  # type: ignore[no-untyped-def]
    _, _, table = training_data
    split = split_by_time(table, horizon_days=60)
    val_cut = split.validation["as_of"].iloc[0]
    assert (split.train["as_of"] + pd.Timedelta(days=60) <= val_cut).all()
    assert split.purged and "purged" in split.description


def test_snapshot_falls_back_to_account_split(small_business) -> None:  # type: ignore[no-untyped-def]
    a, i = small_business.accounts, small_business.interactions
    table = build_training_table(a, i, cutoffs=parse_cutoffs("2024-01-01"))
    split = split_by_time(table, horizon_days=30, config=TrainConfig(snapshot_holdout_share=0.25))
    assert split.kind == "snapshot" and "no time split" in split.description
    ids = [set(part["account_id"]) for part in (split.train, split.validation, split.test)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    rates = [part[LABEL].mean() for part in (split.train, split.validation, split.test)]
    assert max(rates) - min(rates) < 0.02  # stratified


def test_snapshot_training_says_so(small_business) -> None:  # type: ignore[no-untyped-def]
    from churn.features import FeatureSpec

    a, i = small_business.accounts, small_business.interactions
    spec = FeatureSpec.from_data(a, i)
    table = build_training_table(a, i, cutoffs=parse_cutoffs("2023-12-01"), spec=spec)
    result = train(table, spec=spec, config=TrainConfig(n_estimators=50))
    assert result.params["split_kind"] == "snapshot"
    assert result.model.metadata["split_kind"] == "snapshot"


def test_inactivity_churn_with_long_horizon(small_business) -> None:  # type: ignore[no-untyped-def]
    """Transactional data: no churned_at; churn = no purchase/invoice in the next 60 days."""
    from churn.features import FeatureSpec

    a = small_business.accounts.drop(columns="churned_at")
    i = small_business.interactions
    definition = ChurnDefinition(horizon_days=60, activity_event_types=("login", "feature_use"))
    spec = FeatureSpec.from_data(a, i)
    table = build_training_table(a, i, cutoffs=parse_cutoffs("2023-07-01:2024-04-01:1M"), definition=definition, spec=spec)
    result = train(table, spec=spec, definition=definition, config=TrainConfig(n_estimators=60))
    assert result.model.definition["horizon_days"] == 60
    assert result.metrics.loc["model", "roc_auc"] > 0.6
    split = result.split
    assert (split.train["as_of"] + pd.Timedelta(days=60) <= split.validation["as_of"].iloc[0]).all()


def test_model_scores_raw_feature_tables(trained) -> None:  # type: ignore[no-untyped-def]
    test = trained.split.test
    raw = test.drop(columns=[LABEL]).copy()
    raw["plan"] = raw["plan"].astype(str)  # plain text instead of categories still scores
    p = trained.model.predict_proba(raw)
    np.testing.assert_allclose(p, trained.test_scores["model"])
    assert ((p >= 0) & (p <= 1)).all()
    with pytest.raises(MissingFeaturesError, match="long_waits_30d"):
        trained.model.predict_proba(raw.drop(columns=["long_waits_30d"]))


def test_training_is_deterministic(training_data, trained) -> None:  # type: ignore[no-untyped-def]
    _, spec, table = training_data
    again = train(table, spec=spec)
    np.testing.assert_array_equal(again.test_scores["model"], trained.test_scores["model"])


def test_backtest_reports_each_cutoff(training_data) -> None:  # type: ignore[no-untyped-def]
    _, spec, table = training_data
    cutoffs = sorted(table["as_of"].unique())[-2:]
    results = backtest(table, test_cutoffs=cutoffs, spec=spec, config=TrainConfig(n_estimators=150))
    assert sorted(results["test_cutoff"].unique()) == cutoffs
    assert set(results["model"]) == {"model", "logistic", "rule"}
    summary = summarise_backtest(results)
    assert ("mean", "pr_auc") in summary.columns and ("std", "pr_auc") in summary.columns
