"""The feature registry: each feature declared once, described, directed, leak-free."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from churn.config import DRIVERS
from churn.features.build import build_features, catalogue_frame
from churn.features.registry import Feature, Unit, registry
from churn.features.spec import FeatureSpec


@pytest.fixture(scope="module")
def full_spec(small_business) -> FeatureSpec:  # type: ignore[no-untyped-def]
    return FeatureSpec.from_data(small_business.accounts, small_business.interactions, history=small_business.attribute_history)


def test_every_feature_is_described_and_directed(full_spec) -> None:  # type: ignore[no-untyped-def]
    features = registry(full_spec)
    names = [f.name for f in features]
    assert len(names) == len(set(names))
    assert {f.family for f in features} == {"tenure", "activity", "channel", "effort", "voice", "value", "rhythm", "attribute"}
    for f in features:
        assert f.description and "{v}" not in f.description, f.name
        assert f.direction in (-1, 0, 1), f.name
        assert f.driver in DRIVERS, f.name
        assert (f.compute is None) == (f.family == "attribute"), f.name
    table = catalogue_frame(features)
    assert table["actionable"].any() and not table["actionable"].all()


def test_every_registry_feature_passes_the_leakage_test(small_business, full_spec) -> None:  # type: ignore[no-untyped-def]
    """Events after the cutoff — extreme waits, zero NPS, large amounts — and churn after it
    change no feature of the cutoff, feature by feature."""
    accounts, interactions, history = small_business.accounts, small_business.interactions, small_business.attribute_history
    as_of = pd.Timestamp("2024-01-01", tz="UTC")
    before = build_features(accounts, interactions[interactions.occurred_at < as_of], as_of=as_of, spec=full_spec, history=history)
    rng = np.random.default_rng(1)
    future = interactions.sample(5_000, random_state=2).copy()
    future["occurred_at"] = as_of + pd.to_timedelta(rng.integers(0, 200 * 86_400, len(future)), unit="s")
    future["nps"], future["wait_seconds"], future["amount"] = 0.0, 99_999.0, 10_000.0
    changed = accounts.copy()
    later = changed["churned_at"].isna() | (changed["churned_at"] > as_of)
    changed.loc[later, "churned_at"] = as_of + pd.Timedelta(days=3)
    raised = history.assign(valid_from=as_of + pd.Timedelta(days=1), mrr=history["mrr"] * 3)
    after = build_features(
        changed, pd.concat([interactions, future], ignore_index=True), as_of=as_of, spec=full_spec, history=pd.concat([history, raised])
    )
    for f in registry(full_spec):
        pd.testing.assert_series_equal(before[f.name], after[f.name], obj=f.name)


@pytest.mark.parametrize(
    ("unit", "value", "text"),
    [
        (Unit("count", "time", "times"), 1.0, "once"),
        (Unit("count", "time", "times"), 3.0, "3 times"),
        (Unit("count", "support contact", "support contacts"), 1.0, "1 support contact"),
        (Unit("count", "support contact", "support contacts"), 4.0, "4 support contacts"),
        (Unit("seconds"), 840.0, "14 min"),
        (Unit("seconds"), 30.0, "30 s"),
        (Unit("seconds"), 90_000.0, "25 h"),
        (Unit("days"), 1.0, "1 day"),
        (Unit("days"), 0.3, "less than a day"),
        (Unit("percent"), 0.25, "25%"),
        (Unit("change_percent"), 0.15, "+15%"),
        (Unit("score", top=7), 3.0, "3 of 7"),
        (Unit("rate", "login", "logins"), 2.46, "2.5 logins a month"),
        (Unit("ratio"), 1.84, "×1.8"),
        (Unit("count", "case", "cases"), np.nan, "none recorded"),
    ],
)
def test_values_read_in_plain_language(unit: Unit, value: float, text: str) -> None:
    assert unit.format(value) == text


def test_reason_sentences_have_grammar(full_spec) -> None:  # type: ignore[no-untyped-def]
    by_name = {f.name: f for f in registry(full_spec)}
    assert by_name["channel_switches_30d"].explain(1.0) == "had to switch channel once for the same problem in the last 30 days"
    assert by_name["long_waits_90d"].explain(1.0) == "waited over 10 minutes on 1 support contact in the last 90 days"
    assert by_name["wait_mean_90d"].explain(840.0) == "waited 14 min on average on live channels in the last 90 days"
    assert by_name["price_increase_90d"].explain(1.0) == "had a price increase on an invoice in the last 90 days"
    for f in by_name.values():
        if isinstance(f, Feature) and f.unit.kind == "count":
            assert not re.search(r"\b1 times\b", f.explain(1.0)), f.name
