"""Reasons an agent can act on: order, yardstick, playbook, and accuracy against planted causes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli.commands import app
from churn.config import ACTIONABLE_DRIVERS, DRIVERS, ChurnDefinition, ScoreConfig, TrainConfig
from churn.data.synthetic import CAUSE_FAMILIES, generate
from churn.features.build import build_features
from churn.features.labels import build_training_table, default_cutoffs
from churn.features.registry import Feature, Unit, attribute_text
from churn.features.spec import FeatureSpec
from churn.modeling.model import save_bundle
from churn.modeling.train import fit_churn_model, reference_values
from churn.outreach.playbook import FAMILIES, PlaybookError, default_playbook, default_text, load_playbook
from churn.outreach.reasons import accuracy_summary, order_reasons, reason_accuracy, sentence, window_groups, yardstick
from churn.outreach.report import driver_summary
from churn.outreach.score import CONTROL_ACTION, build_risk_list

# --------------------------------------------------------------------------- planted causes


def test_causes_rebuild_the_planted_hazard(small_business) -> None:  # type: ignore[no-untyped-def]
    causes, accounts = small_business.causes, small_business.accounts
    parts = ["effort", "monthly_contract", "price_rise", "low_engagement", "enterprise", "noise"]
    np.testing.assert_allclose(causes["logit"], -5.1 + causes[parts].sum(axis=1), atol=1e-12)
    np.testing.assert_allclose(causes["hazard"], 1 / (1 + np.exp(-causes["logit"])))
    assert not causes.duplicated(["account_id", "month_start"]).any()
    # the dominant cause is the largest positive planted cause, mapped to its driver family
    planted = causes[list(CAUSE_FAMILIES)]
    expected = np.where(planted.max(axis=1) > 0, planted.idxmax(axis=1), "none")
    assert (causes["dominant_cause"].astype("str") == expected).all()
    assert (causes["dominant_family"].astype("str") == causes["dominant_cause"].astype("str").map({**CAUSE_FAMILIES, "none": "none"})).all()
    assert (causes["actionable"] == causes["dominant_family"].isin(list(ACTIONABLE_DRIVERS))).all()
    assert {"effort", "low_engagement", "price_rise", "monthly_contract"} <= set(causes["dominant_cause"].astype("str"))
    # every churner has a row for the month it churned in, and none after it
    churned = accounts.dropna(subset=["churned_at"])
    month = churned["churned_at"].dt.tz_localize(None).dt.to_period("M").dt.start_time.dt.tz_localize("UTC")
    rows = causes.merge(churned[["account_id"]].assign(churn_month=month.to_numpy()), on="account_id")
    assert (rows["month_start"] <= rows["churn_month"]).all()
    has_row = set(zip(rows["account_id"], rows["month_start"]))
    assert all((a, m) in has_row for a, m in zip(churned["account_id"], month))
    # the hazard is the truth: churners had a higher planted hazard in their churn month
    churn_rows = set(zip(churned["account_id"], month))
    is_churn = np.array([(a, m) in churn_rows for a, m in zip(causes["account_id"], causes["month_start"])])
    assert causes.loc[is_churn, "hazard"].mean() > 2 * causes.loc[~is_churn, "hazard"].mean()


def test_causes_are_not_written_to_the_data_folder(small_data_dir: Path) -> None:
    assert not [p for p in small_data_dir.rglob("*") if "cause" in p.name]


def test_causes_deterministic_for_seed() -> None:
    a, b = generate(300, months=6, seed=4), generate(300, months=6, seed=4)
    pd.testing.assert_frame_equal(a.causes, b.causes)


# --------------------------------------------------------------------------- order

DRIVERS_5 = ["support_effort", "support_effort", "usage", "contract", "billing"]


def test_order_hand_computed_five_rows() -> None:
    """f0, f1 support effort; f2 usage; f3 contract (context); f4 billing."""
    scores = np.array(
        [
            [0.30, 0.10, 0.35, 0.90, 0.00],  # support effort sums to 0.40 > usage 0.35: its f0 leads; contract last
            [-0.2, 0.00, 0.00, 0.50, 0.00],  # only context raises the risk: it leads
            [-0.1, -0.3, 0.00, -0.1, 0.00],  # nothing raises the risk: no reason
            [0.00, 0.00, 0.10, 0.20, 0.80],  # f4 is not known for this account: never a reason
            [0.20, -0.5, 0.00, 0.10, 0.05],  # support nets −0.30, billing +0.05: billing leads, then f0, then context
        ]
    )
    usable = np.ones_like(scores, dtype=bool)
    usable[3, 4] = False
    idx, values = order_reasons(scores, usable, DRIVERS_5, 4)
    assert idx.tolist() == [[0, 2, 1, 3], [3, -1, -1, -1], [-1, -1, -1, -1], [2, 3, -1, -1], [4, 0, 3, -1]]
    np.testing.assert_allclose(values[0], [0.30, 0.35, 0.10, 0.90])
    assert np.isnan(values[2]).all()


def test_only_the_strongest_window_of_a_measure_is_shown() -> None:
    names = ["repeat_contacts_30d", "repeat_contacts_90d", "n_login_30d", "wait_mean_90d"]
    groups = window_groups(names)
    assert [g.tolist() for g in groups] == [[0, 1]]
    scores = np.array([[0.3, 0.5, 0.1, 0.2]])
    idx, _ = order_reasons(scores, np.ones_like(scores, dtype=bool), ["support_effort", "support_effort", "usage", "support_effort"], 3, groups)
    assert idx.tolist() == [[1, 3, 2]]


# --------------------------------------------------------------------------- yardstick


def test_reference_values_hand_computed() -> None:
    train = pd.DataFrame(
        {
            "waits": [0.0, 0.0, 60.0, 120.0, 600.0],
            "flag": [0.0, 1.0, 0.0, 0.0, np.nan],
            "never": [np.nan] * 5,
            "contract": pd.Categorical(["monthly", "monthly", "annual", "monthly", None]),
        }
    )
    ref = reference_values(train, ["waits", "flag", "never", "contract"], {"contract"})
    assert ref["waits"] == {"median": 60.0, "spread": 120.0, "mean": 156.0, "known": 1.0}
    assert ref["flag"]["mean"] == 0.25 and ref["flag"]["known"] == 0.8
    assert ref["never"]["known"] == 0.0
    assert ref["contract"] == {"shares": {"monthly": 0.75, "annual": 0.25}}


@pytest.mark.parametrize(
    ("feature", "value", "reference", "text"),
    [
        (
            Feature("wait_mean_90d", "effort", "support_effort", "waited {v} on average on live channels in the last 90 days", 1, Unit("seconds")),
            840.0,
            {"median": 180.0, "known": 0.6},
            "waited 14 min on average on live channels in the last 90 days; typical: 3 min",
        ),
        (
            Feature("repeat_contacts_30d", "effort", "support_effort", "came back {v} about the same problem in the last 30 days", 1, Unit("count", "time", "times")),
            4.0,
            {"median": 0.0, "known": 1.0},
            "came back 4 times about the same problem in the last 30 days; typical: none",
        ),
        (
            Feature("n_support_contact_90d", "activity", "support_effort", "{v} in the last 90 days", 1, Unit("count", "support contact", "support contacts")),
            1.0,
            {"median": 2.0, "known": 1.0},
            "1 support contact in the last 90 days; typical: 2 support contacts",
        ),
        (
            Feature("price_increase_90d", "value", "billing", "had a price increase on an invoice in the last 90 days", 1, Unit("flag")),
            1.0,
            {"median": 0.0, "mean": 0.06, "known": 1.0},
            "had a price increase on an invoice in the last 90 days; true of 6% of accounts",
        ),
        (
            Feature("contract", "attribute", "contract", attribute_text("contract", categorical=True), 0),
            "monthly",
            {"shares": {"annual": 0.42, "monthly": 0.58}},
            "on a monthly contract; true of 58% of accounts",
        ),
        (
            Feature("total_day_minutes", "attribute", "account", attribute_text("total_day_minutes", categorical=False), 0),
            283.0,
            {"median": 180.0, "known": 1.0},
            "total day minutes 283; typical: 180",
        ),
        (
            Feature("tenure_days", "tenure", "tenure", "a customer for {v}", -1, Unit("days")),
            92.0,
            {"median": 420.0, "known": 1.0},
            "a customer for 3 months; typical: 14 months",
        ),
        (
            Feature("ces_trend", "voice", "survey", "CES moved by {v} (last 90 days vs. the 9 months before)", -1, Unit("change", "point", "points")),
            -1.0,
            {"median": 0.0, "known": 0.3},
            "CES moved by -1 point (last 90 days vs. the 9 months before); typical: no change",
        ),
        (
            Feature("login_per_month_90d", "activity", "usage", "{v} over the last 90 days", -1, Unit("rate", "login", "logins")),
            1.0,
            {"median": 6.0, "known": 1.0},
            "1 login a month over the last 90 days; typical: 6 logins a month",
        ),
    ],
)
def test_yardstick_values(feature: Feature, value: object, reference: dict, text: str) -> None:
    assert sentence(feature, value, reference) == text


@pytest.mark.parametrize(
    ("unit", "value", "text", "typical"),
    [
        (Unit("days"), 45.0, "45 days", "45 days"),
        (Unit("days"), 400.0, "13 months", "13 months"),
        (Unit("days"), 913.0, "2.5 years", "2.5 years"),
        (Unit("days"), 731.0, "2 years", "2 years"),
        (Unit("count", "time", "times"), 0.0, "no times", "none"),
        (Unit("rate", "login", "logins"), 0.0, "0 logins a month", "none"),
        (Unit("change", "point", "points"), 1.0, "+1 point", "+1 point"),
        (Unit("change", "point", "points"), -0.01, "0 points", "no change"),
        (Unit("change", "point", "points"), 0.96, "+1 point", "+1 point"),  # singular as shown, not as computed
        (Unit("change", "point", "points"), -1.04, "-1 point", "-1 point"),
        (Unit("count", "support contact", "support contacts"), 0.4, "0 support contacts", "none"),
        (Unit("count", "support contact", "support contacts"), 0.5, "0 support contacts", "none"),
        (Unit("change_percent"), 0.0, "+0%", "no change"),
        (Unit("percent"), 0.0, "0%", "0%"),
    ],
)
def test_units_as_values_and_as_yardsticks(unit: Unit, value: float, text: str, typical: str) -> None:
    assert unit.format(value) == text and unit.typical(value) == typical


def test_no_yardstick_without_a_reference_or_a_known_value() -> None:
    f = Feature("wait_mean_90d", "effort", "support_effort", "waited {v}", 1, Unit("seconds"))
    assert yardstick(f, 840.0, None) == "" and yardstick(f, 840.0, {"median": 0.0, "known": 0.0}) == ""


# --------------------------------------------------------------------------- on a scored business


@pytest.fixture(scope="module")
def risk(trained, latest_features):  # type: ignore[no-untyped-def]
    frame, notes = build_risk_list(latest_features, trained.model, config=ScoreConfig(capacity=150, control_share=0.1, seed=1))
    return frame, notes


def test_reasons_read_with_a_yardstick_and_grammar(risk) -> None:  # type: ignore[no-untyped-def]
    frame, _ = risk
    texts = pd.concat([frame[f"reason_{i}"] for i in (1, 2, 3)])
    texts = texts[texts != ""]
    assert len(texts) > 1000
    assert not texts.str.contains(r"(?<![\d.,])[+-]?1 [a-z]+s\b|\b1 [a-z_ ]*events\b|\{v\}|\bnan\b", regex=True).any()
    # no bare number: every reason says what is typical (a median, or a share of accounts)
    assert texts.str.contains(r"; typical: |; true of (?:under )?\d+% of accounts$", regex=True).all(), texts[~texts.str.contains("; t")].head().tolist()
    assert not texts.str.contains(r" is \d", regex=True).any()  # no "total day minutes is 283"


def test_yardstick_is_the_models_reference_not_the_batch(risk, trained, latest_features) -> None:  # type: ignore[no-untyped-def]
    frame, _ = risk
    model = trained.model
    infos = {i.name: i for i in model.feature_infos()}
    lead = frame["reason_features"].str.split(",").str[0]
    some = frame[lead.isin(["repeat_contacts_90d", "share_support_contact_90d", "login_per_month_90d"])].head(20)
    assert len(some) > 5
    values = latest_features.set_index("account_id").loc[some["account_id"]]
    for row, (_, r) in zip(values.itertuples(), some.iterrows()):
        name = r["reason_features"].split(",")[0]
        expected = yardstick(infos[name], getattr(row, name), model.reference[name])
        assert expected.startswith("; typical: ") and r["reason_1"].endswith(expected)
    # a batch of only the riskiest accounts quotes the same typical values
    few = latest_features[latest_features["account_id"].isin(some["account_id"])]
    again, _ = build_risk_list(few, model, config=ScoreConfig(capacity=len(few), control_share=0.0))
    mine = frame.set_index("account_id").loc[again["account_id"], "reason_1"].str.split("; ").str[-1]
    assert (again["reason_1"].str.split("; ").str[-1].to_numpy() == mine.to_numpy()).all()


def test_actionable_reasons_lead_and_contributions_are_exact(risk, trained, latest_features) -> None:  # type: ignore[no-untyped-def]
    frame, _ = risk
    model = trained.model
    infos = model.feature_infos()
    exact = frame[frame["reason_method"] == "tree_shap"].head(80)
    rows = latest_features.set_index("account_id").loc[exact["account_id"]].reset_index()
    contrib = model.contributions(rows)
    usable = model.prepare(rows).notna().to_numpy()
    actionable = np.array([i.actionable for i in infos])
    column = {name: j for j, name in enumerate(model.feature_names)}
    for i, (_, r) in enumerate(exact.iterrows()):
        names = r["reason_features"].split(",")
        values = [float(v) for v in r["reason_contributions"].split(",")]
        drivers = r["reason_drivers"].split(",")
        assert len(names) == len(values) == len(drivers)
        np.testing.assert_allclose(values, [contrib[i, column[n]] for n in names], rtol=1e-3)
        assert drivers == [infos[column[n]].driver for n in names]
        if (usable[i] & actionable & (contrib[i] > 0)).any():
            assert drivers[0] in ACTIONABLE_DRIVERS, r["reason_features"]  # context never leads over something actionable
    flagged = frame[frame["outreach"] | frame["control"]]
    lead = flagged["reason_drivers"].str.split(",").str[0]
    assert lead.isin(list(ACTIONABLE_DRIVERS)).mean() > 0.8  # not "contract is monthly" for most of the list
    assert (frame["reason_method"] == "deviation").any()  # the long tail is ordered the same way
    tail = frame[frame["reason_method"] == "deviation"]
    assert tail["reason_drivers"].str.split(",").str[0].isin(list(ACTIONABLE_DRIVERS)).mean() > 0.5


def test_driver_table_is_led_by_actionable_drivers(risk) -> None:  # type: ignore[no-untyped-def]
    frame, _ = risk
    table = driver_summary(frame, {})
    assert table["actionable"].iloc[0] and table["accounts"].iloc[0] == table["accounts"].max()
    assert table["actionable"].is_monotonic_decreasing  # every actionable family before any context
    assert table["accounts"].sum() == (frame["reason_features"][frame["outreach"] | frame["control"] | (frame["risk_band"] == "high")] != "").sum()


def test_driver_table_hand_computed() -> None:
    risk = pd.DataFrame(
        {
            "outreach": [True, True, True, False, False],
            "control": [False, False, False, True, False],
            "risk_band": ["high", "high", "medium", "medium", "low"],  # the low, unflagged one is not counted
            "reason_features": ["contract,wait_mean_90d", "contract", "contract,tenure_days", "repeat_contacts_90d", "repeat_contacts_90d"],
            "reason_drivers": ["contract,support_effort", "contract", "contract,tenure", "support_effort", "support_effort"],
        }
    )
    table = driver_summary(risk, {"repeat_contacts_90d": "came back"})
    assert table["family"].tolist() == ["support_effort", "contract"]  # actionable first even when context is more common
    assert table["accounts"].tolist() == [1, 3] and table["share"].tolist() == [0.25, 0.75]
    assert table["features"].iloc[0] == [{"feature": "repeat_contacts_90d", "description": "came back", "accounts": 1}]


# --------------------------------------------------------------------------- playbook


def test_default_playbook_covers_every_family_and_is_used(risk) -> None:  # type: ignore[no-untyped-def]
    book = default_playbook()
    assert set(book.actions) == set(FAMILIES) == {*DRIVERS, "default"}
    frame, notes = risk
    titles = {a.title for a in book.actions.values()}
    called = frame[~frame["control"]]
    assert called["suggested_action"].isin(titles).all() and (called["action_wording"] != "").all()
    lead = called["reason_drivers"].str.split(",").str[0].replace("", "default")
    assert (called["suggested_action"] == lead.map({k: a.title for k, a in book.actions.items()})).all()
    assert (frame.loc[frame["control"], "suggested_action"] == CONTROL_ACTION).all()
    assert "default" in str(notes["playbook"])
    assert "[support_effort]" in default_text()


def test_custom_playbook_overrides_families(tmp_path: Path, trained, latest_features) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ours.toml"
    path.write_text('[support_effort]\ntitle = "Call from the support lead"\nwording = """Apologise,\n fix it today."""\n', encoding="utf-8")
    book = load_playbook(path)
    assert book.actions["support_effort"].title == "Call from the support lead"
    assert book.actions["support_effort"].wording == "Apologise, fix it today."
    assert book.actions["usage"] == default_playbook().actions["usage"]  # the rest is the default
    assert book.source == str(path) and book.overridden == ("support_effort",)
    frame, notes = build_risk_list(latest_features, trained.model, config=ScoreConfig(capacity=150, control_share=0.1, seed=1), playbook=book)
    lead = frame["reason_drivers"].str.split(",").str[0]
    effort = frame[(lead == "support_effort") & ~frame["control"]]
    assert len(effort) and (effort["suggested_action"] == "Call from the support lead").all()
    assert notes["playbook"] == str(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[support_effort\ntitle = 'x'", r"playbook \S+bad\.toml is not valid TOML: .*line 1"),
        ("[suport_effort]\ntitle = 'x'\nwording = 'y'\n", r"playbook \S+bad\.toml: unknown driver family \[suport_effort\] \(known: support_effort, "),
        ("[usage]\ntitle = 'x'\n", r"playbook \S+bad\.toml: \[usage\] lacks the key 'wording'"),
        ("[usage]\ntitle = 'x'\nwording = 'y'\nowner = 'z'\n", r"playbook \S+bad\.toml: unknown key \[usage\]\.owner"),
        ("usage = 'call them'\n", r"playbook \S+bad\.toml: usage must be a table"),
        ("[usage]\ntitle = ''\nwording = 'y'\n", r"playbook \S+bad\.toml: \[usage\]\.title must be non-empty text"),
    ],
)
def test_malformed_playbook_names_file_and_key(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PlaybookError, match=message):
        load_playbook(path)


def test_missing_playbook_file() -> None:
    with pytest.raises(PlaybookError, match=r"playbook nowhere\.toml does not exist"):
        load_playbook("nowhere.toml")


def test_cli_score_with_playbook(tmp_path: Path, trained, small_data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    bundle = tmp_path / "model.joblib"
    save_bundle(trained.model, bundle)
    base = ["score", "--data", str(small_data_dir), "--as-of", "2024-05-01", "--capacity", "60", "--model", str(bundle)]
    bad = tmp_path / "bad.toml"
    bad.write_text("[billing]\ntitle = 'Plan review'\n", encoding="utf-8")
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "s1"), "--playbook", str(bad)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert re.search(r"Error: playbook \S*bad\.toml: \[billing\] lacks the key 'wording'", " ".join(result.output.split()))
    assert not (tmp_path / "s1").exists()  # stopped before scoring anything
    ours = tmp_path / "ours.toml"
    ours.write_text("[support_effort]\ntitle = 'Call from the support lead'\nwording = 'Fix it today.'\n", encoding="utf-8")
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "s2"), "--playbook", str(ours)])
    assert result.exit_code == 0, result.output
    risk = pd.read_parquet(tmp_path / "s2" / "risk_list.parquet")
    lead = risk["reason_drivers"].str.split(",").str[0]
    assert (risk.loc[(lead == "support_effort") & ~risk["control"], "suggested_action"] == "Call from the support lead").all()
    assert (lead == "support_effort").any()
    html = (tmp_path / "s2" / "report.html").read_text(encoding="utf-8")
    first = re.search(r'<table id="drivers-table">.*?<tbody>\s*<tr class="(\w+)"', html, re.S)
    assert first and first.group(1) == "actionable"


# --------------------------------------------------------------------------- accuracy


def test_reason_accuracy_hand_computed() -> None:
    t = pd.Timestamp("2024-05-01", tz="UTC")
    risk = pd.DataFrame(
        {
            "account_id": ["a", "b", "c", "d", "e"],
            "as_of": [t] * 5,
            "rank": [1, 2, 3, 4, 5],
            "outreach": [True, True, False, True, False],
            "control": [False, False, True, False, False],
            "reason_drivers": ["support_effort,contract", "contract,usage", "usage", "billing", "support_effort"],
            "reason_method": ["tree_shap"] * 4 + ["deviation"],
        }
    )
    causes = pd.DataFrame(
        {
            "account_id": ["a", "b", "c", "d", "e", "a"],
            "month_start": [t] * 5 + [t - pd.DateOffset(months=1)],
            "dominant_cause": ["effort", "low_engagement", "effort", "monthly_contract", "effort", "price_rise"],
            "dominant_family": ["support_effort", "usage", "support_effort", "contract", "support_effort", "billing"],
            "actionable": [True, True, True, False, True, True],
        }
    )
    matches = reason_accuracy(risk, causes)
    assert matches["account_id"].tolist() == ["a", "b", "c", "d"]  # flagged only
    assert matches["match"].tolist() == [True, False, False, False]
    summary = accuracy_summary(matches)
    assert summary["accuracy"] == pytest.approx(1 / 3) and summary["accounts"] == 3 and summary["flagged"] == 4
    assert summary["by_cause"] == {"effort": (0.5, 2), "low_engagement": (0.0, 1)}


def planted_accuracy(seed: int, accounts: int = 3_000, months: int = 18, capacity: int = 150) -> pd.DataFrame:
    """Train on the mature cutoffs before the last simulated month, score at its start and
    compare the flagged accounts' lead reasons with their dominant planted causes."""
    data = generate(accounts, start="2023-01-01", months=months, seed=seed)
    as_of = pd.Timestamp("2023-01-01", tz="UTC") + pd.DateOffset(months=months - 1)
    definition = ChurnDefinition().resolved(data.accounts)
    spec = FeatureSpec.from_data(data.accounts, data.interactions, history=data.attribute_history)
    table = build_training_table(
        data.accounts, data.interactions, cutoffs=default_cutoffs(as_of, definition, 8), spec=spec, history=data.attribute_history
    )
    model, _ = fit_churn_model(table, spec=spec, definition=definition, config=TrainConfig(learning_rate=0.1, n_estimators=300, calibration_folds=2))
    seen = data.interactions[data.interactions["occurred_at"] < as_of]
    features = build_features(data.accounts, seen, as_of=as_of, spec=spec, definition=definition, history=data.attribute_history)
    risk, _ = build_risk_list(features, model, config=ScoreConfig(capacity=capacity))
    return reason_accuracy(risk, data.causes)


@pytest.mark.slow
def test_lead_reason_names_the_planted_cause_on_several_seeds() -> None:
    """The honest floor under the benchmark's figure (benchmarks/reasons.py: 86–92 % on
    20,000-account businesses). Small businesses and quick models name the cause less often
    (66–74 % here, pooled 72 %): their survey features take part of the effort signal (the
    generator plants CES/CSAT as answers to effort), and low engagement is often a close
    second to effort. The floor sits below what these seeds give, not at the bar.

    Effort is the dominant cause of about 70 % of these accounts, so a list that always blamed
    support effort would pass the overall floor: the floor on low engagement (named for 52 %
    pooled here) is what a constant answer fails."""
    matches = {seed: planted_accuracy(seed) for seed in (11, 12, 13)}
    results = {seed: accuracy_summary(m) for seed, m in matches.items()}
    pooled = sum(r["accuracy"] * r["accounts"] for r in results.values()) / sum(r["accounts"] for r in results.values())
    assert all(r["accounts"] >= 80 for r in results.values()), results
    assert pooled >= 0.65, results
    assert min(r["accuracy"] for r in results.values()) >= 0.55, results
    every = pd.concat(matches.values())
    low = every[every["actionable"] & (every["dominant_cause"].astype("str") == "low_engagement")]
    assert len(low) >= 50 and low["match"].mean() >= 0.25, results


def test_a_flag_known_for_some_accounts_is_a_share_of_all_accounts() -> None:
    """The reference's mean of a yes/no feature is over accounts with a value (NPS answered):
    the yardstick reads as a share of all accounts, as it says."""
    f = Feature("nps_detractor", "voice", "survey", "the latest NPS answer was a detractor (0–6)", 1, Unit("flag"))
    assert yardstick(f, 1.0, {"mean": 0.4, "median": 0.0, "known": 0.5}) == "; true of 20% of accounts"
    assert yardstick(f, 0.0, {"mean": 0.4, "median": 0.0, "known": 0.5}) == "; true of 30% of accounts"
