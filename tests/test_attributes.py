"""Attributes in time: history, static and export values; and who is a customer at T."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churn.config import ChurnDefinition, DataSettings, SettingsError, load_settings
from churn.data.attributes import attributes_at, plan_attributes
from churn.data.contract import validate
from churn.data.population import is_customer, lapsed
from churn.features.build import build_features, learn_spec

T = pd.Timestamp("2024-03-01", tz="UTC")


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_export_values_are_dropped_before_the_export_date() -> None:
    accounts = pd.DataFrame(
        {"account_id": ["a"], "signup_at": [ts("2023-01-01")], "status": ["active"], "country": ["fr"], "plan": ["x"]}
    )
    history = pd.DataFrame({"account_id": ["a"], "valid_from": [ts("2023-01-01")], "plan": ["basic"]})
    settings = DataSettings(static_attributes=("country", "signup_channel"))
    decisions = {d.name: d for d in plan_attributes(accounts, history, cutoffs=[T], settings=settings, export_date=ts("2024-06-01"))}
    assert (decisions["plan"].source, decisions["plan"].used) == ("history", True)
    assert (decisions["country"].source, decisions["country"].used) == ("static", True)
    assert (decisions["status"].source, decisions["status"].used) == ("export", False)
    assert "2024-06-01" in decisions["status"].reason and "static" in decisions["status"].reason
    assert not decisions["signup_channel"].used and "not a column" in decisions["signup_channel"].reason
    # a snapshot scored on (or after) the day it was exported may use the export's values
    snapshot = {d.name: d for d in plan_attributes(accounts, None, cutoffs=[ts("2024-06-01")], settings=DataSettings(), export_date=ts("2024-06-01"))}
    assert snapshot["status"].used and snapshot["plan"].used
    declared = DataSettings(attributes_as_of=T)
    assert all(d.used for d in plan_attributes(accounts, None, cutoffs=[T], settings=declared, export_date=ts("2024-06-01")))


def test_history_gives_the_value_valid_at_each_cutoff() -> None:
    accounts = pd.DataFrame({"account_id": ["a", "b", "c"], "signup_at": [ts("2023-01-01")] * 3, "mrr": [99.0, 99.0, 99.0]})
    history = pd.DataFrame(
        {
            "account_id": ["a", "a", "a", "b", "b"],
            "valid_from": [ts("2023-01-01"), ts("2024-01-15"), ts("2024-03-01"), ts("2024-02-01"), ts("2024-02-10")],
            "mrr": [10.0, 12.0, 15.0, 20.0, np.nan],
            "plan": ["basic", None, "pro", "std", "pro"],
        }
    )
    at = attributes_at(accounts, history, T, ["mrr", "plan"]).set_index("account_id")
    # a: the 2024-03-01 change is not before the cutoff; the blank plan of 2024-01-15 means "unchanged"
    assert at.loc["a", "mrr"] == 12.0 and at.loc["a", "plan"] == "basic"
    assert at.loc["b", "mrr"] == 20.0 and at.loc["b", "plan"] == "pro"
    assert np.isnan(at.loc["c", "mrr"]) and pd.isna(at.loc["c", "plan"])  # no history row yet: unknown
    later = attributes_at(accounts, history, ts("2024-03-02"), ["mrr", "plan"]).set_index("account_id")
    assert later.loc["a", "mrr"] == 15.0 and later.loc["a", "plan"] == "pro"


def test_status_and_a_later_price_change_do_not_leak_into_a_past_cutoff(small_business) -> None:  # type: ignore[no-untyped-def]
    """The leakage test for attributes: today's export differs from the past in `status` and
    in `mrr` (a price rise after the cutoff); the features of the cutoff do not change."""
    accounts, interactions = small_business.accounts, small_business.interactions
    as_of = ts("2024-01-01")
    history = pd.DataFrame({"account_id": accounts["account_id"], "valid_from": accounts["signup_at"], "mrr": accounts["mrr"]})
    honest = accounts.assign(status="active")
    data = validate(honest, interactions, history)
    settings = DataSettings(static_attributes=("plan", "contract", "segment", "region"))
    spec, decisions = learn_spec(data, cutoffs=[as_of], data_end=ts("2024-07-01"), settings=settings)
    assert {d.name for d in decisions if not d.used} == {"status"}
    assert "mrr" in spec.history_attributes and "status" not in [c for c, _ in spec.categorical_attributes]
    before = build_features(data.accounts, data.interactions, as_of=as_of, spec=spec, history=data.attribute_history)

    exported = data.accounts.copy()
    gone = exported["churned_at"].notna()
    exported.loc[gone, "status"] = "cancelled"  # what a CRM export says today
    exported["mrr"] = exported["mrr"] * 1.2  # the price rise after the cutoff, as exported today
    rise = pd.DataFrame({"account_id": exported["account_id"], "valid_from": as_of + pd.Timedelta(days=10), "mrr": exported["mrr"]})
    later_history = pd.concat([data.attribute_history, rise], ignore_index=True).sort_values(["account_id", "valid_from"])
    after = build_features(exported, data.interactions, as_of=as_of, spec=spec, history=later_history)
    pd.testing.assert_frame_equal(before, after)
    assert before["mrr"].notna().all()


def test_attributes_that_cannot_be_features_are_reported_as_dropped(small_business) -> None:  # type: ignore[no-untyped-def]
    """A constant column, an id-like text column and an empty one are declared static (so the
    attribute plan would use them), but no feature can come of them: the decisions say so and
    why, instead of listing them as used."""
    accounts, interactions = small_business.accounts, small_business.interactions
    messy = accounts.assign(export_batch="2024-07", crm_ref="ref-" + accounts["account_id"].astype("str"), notes=pd.Series(pd.NA, index=accounts.index, dtype="str"))
    data = validate(messy, interactions)
    settings = DataSettings(static_attributes=("plan", "contract", "segment", "region", "export_batch", "crm_ref", "notes"))
    spec, decisions = learn_spec(data, cutoffs=[ts("2024-01-01")], data_end=ts("2024-07-01"), settings=settings)
    by_name = {d.name: d for d in decisions}
    assert by_name["plan"].used and "plan" in [c for c, _ in spec.categorical_attributes]
    assert not by_name["export_batch"].used and by_name["export_batch"].reason == "one value for every account (static values)"
    assert not by_name["crm_ref"].used and "1,500 distinct values" in by_name["crm_ref"].reason
    assert not by_name["notes"].used and by_name["notes"].reason.startswith("no values")
    used = {d.name for d in decisions if d.used}
    assert used == set(spec.numeric_attributes) | {c for c, _ in spec.categorical_attributes}


def test_one_rule_for_who_is_a_customer() -> None:
    accounts = pd.DataFrame(
        {"account_id": ["buying", "lapsed", "new", "future"], "signup_at": [ts("2023-01-01")] * 2 + [T - pd.Timedelta(days=3), T]}
    )
    interactions = pd.DataFrame(
        {
            "account_id": ["buying", "lapsed", "buying"],
            "occurred_at": [T - pd.Timedelta(days=5), T - pd.Timedelta(days=40), T],  # the event at T itself is not "before T"
            "event_type": ["purchase"] * 3,
        }
    )
    definition = ChurnDefinition(horizon_days=30)
    mask = is_customer(accounts, interactions, T, definition)
    assert accounts["account_id"][mask].tolist() == ["buying", "new"]
    gone = lapsed(accounts, interactions, T, definition)
    assert gone["account_id"].tolist() == ["lapsed"]
    assert gone["last_activity"].iloc[0] == T - pd.Timedelta(days=40) and gone["days_lapsed"].iloc[0] == 10.0
    subscription = accounts.assign(churned_at=[pd.NaT, T - pd.Timedelta(days=1), pd.NaT, pd.NaT])
    assert is_customer(subscription, interactions, T, ChurnDefinition()).tolist() == [True, False, True, False]
    assert lapsed(subscription, interactions, T, ChurnDefinition()).empty


def test_settings_files_and_overrides(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "pyproject.toml").write_text('[tool.churn]\nstatic_attributes = ["region"]\ndate_format = "%d/%m/%Y"\n')
    data = tmp_path / "data"
    data.mkdir()
    (data / "churn.toml").write_text('static_attributes = ["plan", "region"]\nattributes_as_of = "2024-06-01"\n')
    settings = load_settings(data, cwd=tmp_path)
    assert settings.static_attributes == ("plan", "region") and settings.date_format == "%d/%m/%Y"
    assert settings.attributes_as_of == ts("2024-06-01")
    assert settings.with_overrides(static_attributes="country, plan", data_end=None).static_attributes == ("country", "plan")
    (data / "churn.toml").write_text("statc_attributes = []\n")
    with pytest.raises(SettingsError, match="unknown setting.*statc_attributes"):
        load_settings(data, cwd=tmp_path)
    (data / "churn.toml").write_text('date_format = "dd/mm/yyyy"\n')
    with pytest.raises(SettingsError, match="strftime"):
        load_settings(data, cwd=tmp_path)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["A", "B", "C", "D"]), st.integers(0, 9), st.one_of(st.none(), st.floats(1, 99)), st.one_of(st.none(), st.sampled_from(["basic", "pro"]))),
        max_size=25,
    ),
    st.integers(0, 10),
)
def test_attributes_at_equals_the_last_row_before_as_of_with_blanks_carried_forward(rows, day) -> None:  # type: ignore[no-untyped-def]
    """Against a plain reading of the rule, account by account: the latest row strictly before
    ``as_of``, a blank taken from the account's earlier rows; missing before its first row."""
    history = pd.DataFrame(rows, columns=["account_id", "day", "mrr", "plan"]).sort_values(["day"], kind="stable")
    history["valid_from"] = ts("2024-01-01") + pd.to_timedelta(history.pop("day"), unit="D")
    history["mrr"] = history["mrr"].astype("float64")
    accounts = pd.DataFrame({"account_id": ["D", "A", "E", "B", "C"], "mrr": 0.0, "plan": "old"})
    as_of = ts("2024-01-01") + pd.Timedelta(days=day)
    got = attributes_at(accounts, history, as_of, ["mrr", "plan"]).set_index("account_id")
    for account in accounts["account_id"]:
        past = history[(history["account_id"] == account) & (history["valid_from"] < as_of)]
        for col in ("mrr", "plan"):
            known = past[col].dropna()
            want = known.iloc[-1] if len(known) else None
            value = got.loc[account, col]
            assert (pd.isna(value) and want is None) or value == want, (account, col, value, want)
