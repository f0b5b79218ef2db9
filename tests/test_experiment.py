"""Outreach as an experiment across weekly runs: persistent assignment, uplift statistics,
contact logs — pure functions on hand-made cases, then six weekly runs of `churn score`."""

from __future__ import annotations

import math
import shutil
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.outreach.experiment import (
    active_assignments,
    assign_controls,
    block_draw,
    cohort,
    difference_test,
    mh_risk_difference,
    mh_score_interval,
    parse_contacts,
    power_note,
    reached_in_window,
    uplift_table,
)

T = pd.Timestamp("2024-03-04", tz="UTC")
WEEK = pd.Timedelta(days=7)


def ranked(n: int, seed: int = 0) -> pd.DataFrame:
    """n accounts a0…, ranked in a random order (a different order per seed)."""
    order = np.random.default_rng(seed).permutation(n)
    return pd.DataFrame({"account_id": [f"a{i}" for i in range(n)], "rank": order + 1})


# --------------------------------------------------------------------------- assignment


def test_block_draw_takes_one_per_block_of_consecutive_ranks() -> None:
    picks = block_draw(100, 10, np.random.default_rng(1))
    assert sorted(picks // 10) == list(range(10))
    assert block_draw(5, 0, np.random.default_rng(1)).size == 0


def test_first_run_draw_is_balanced_reproducible_per_date_and_differs_between_dates() -> None:
    frame = ranked(400)
    first = assign_controls(frame, None, as_of=T, capacity=150, share=0.1, seed=7)
    flagged = first["outreach"] | first["control"]
    assert flagged.sum() == 150 and frame.loc[flagged, "rank"].max() == 150
    assert not (first["outreach"] & first["control"]).any()
    assert sorted((frame.loc[first["control"], "rank"] - 1) // 10) == list(range(15))  # one per block of 10 ranks
    assert (first.loc[flagged, "assigned_as_of"] == T).all() and first.loc[~flagged, "assigned_as_of"].isna().all()
    again = assign_controls(frame, None, as_of=T, capacity=150, share=0.1, seed=7)
    pd.testing.assert_frame_equal(first, again)
    for other in (assign_controls(frame, None, as_of=T + WEEK, capacity=150, share=0.1, seed=7), assign_controls(frame, None, as_of=T, capacity=150, share=0.1, seed=8)):
        assert set(frame.loc[other["control"], "account_id"]) != set(frame.loc[first["control"], "account_id"])


def test_held_controls_stay_out_and_treated_accounts_are_never_drawn() -> None:
    # ten accounts, ranks 1..10 in id order; capacity 4, half of the new ones held out
    frame = pd.DataFrame({"account_id": [f"a{i}" for i in range(1, 11)], "rank": range(1, 11)})
    earlier = T - WEEK
    prior = pd.DataFrame(
        {
            "account_id": ["a1", "a2", "a9"],
            "arm": ["control", "outreach", "control"],
            "assigned_as_of": [earlier] * 3,
            "ends_at": [earlier + pd.Timedelta(days=30)] * 3,
        }
    )
    out = assign_controls(frame, prior, as_of=T, capacity=4, share=0.5, seed=7).set_index(frame["account_id"])
    # a1 and a9 are held out (control, whatever their rank) and use no capacity
    assert out.loc[["a1", "a9"], "control"].all() and not out.loc[["a1", "a9"], "outreach"].any()
    assert (out.loc[["a1", "a9"], "assigned_as_of"] == earlier).all()
    # capacity 4 among the others: a2 (already treated: outreach, never control), a3, a4, a5
    flagged = out[(out["outreach"] | out["control"]) & ~out.index.isin(["a1", "a9"])]
    assert flagged.index.tolist() == ["a2", "a3", "a4", "a5"]
    assert out.loc["a2", "outreach"] and out.loc["a2", "assigned_as_of"] == earlier
    # new controls: round(0.5 × 3 new) = 2, one per block of the new accounts' ranks
    new_controls = out[out["control"] & (out["assigned_as_of"] == T)]
    assert len(new_controls) == 2 and set(new_controls.index) <= {"a3", "a4", "a5"}
    assert not out.loc[["a6", "a7", "a8", "a10"], ["outreach", "control"]].any().any()


def test_assignments_are_active_strictly_inside_their_own_horizon() -> None:
    cohorts = pd.DataFrame(
        {"account_id": ["x", "y", "z"], "arm": ["control", "outreach", "control"], "run_as_of": [T, T, T - WEEK], "horizon_days": [30, 30, 7]}
    )
    assert active_assignments(cohorts, T).empty  # not at its own date
    assert set(active_assignments(cohorts, T + WEEK)["account_id"]) == {"x", "y"}  # z's 7-day horizon ended at T
    assert active_assignments(cohorts, T + pd.Timedelta(days=30)).empty  # the horizon has passed
    # two assignments of one account (lists from before persistence): the earlier counts
    twice = pd.DataFrame({"account_id": ["x", "x"], "arm": ["control", "outreach"], "run_as_of": [T - WEEK, T], "horizon_days": [30, 30]})
    assert active_assignments(twice, T + WEEK)[["arm", "assigned_as_of"]].values.tolist() == [["control", T - WEEK]]


def test_six_weekly_runs_never_call_a_held_control() -> None:
    """Pure simulation: the ranking reshuffles every week; controls persist for 30 days."""
    n, capacity, horizon = 300, 60, 30
    lists, cohorts = {}, []
    for week in range(6):
        as_of = T + week * WEEK
        frame = ranked(n, seed=week)
        prior = active_assignments(pd.concat(cohorts, ignore_index=True) if cohorts else None, as_of)
        risk = pd.concat([frame, assign_controls(frame, prior, as_of=as_of, capacity=capacity, share=0.2, seed=7)], axis=1)
        lists[as_of] = risk
        cohorts.append(cohort(risk, as_of).assign(run_as_of=as_of, horizon_days=horizon))
        # re-running the date reproduces the list exactly
        pd.testing.assert_frame_equal(risk, pd.concat([frame, assign_controls(frame, prior, as_of=as_of, capacity=capacity, share=0.2, seed=7)], axis=1))
    checked = 0
    for as_of, risk in lists.items():
        controls = set(risk.loc[risk["control"] & (risk["assigned_as_of"] == as_of), "account_id"])
        treated = set(risk.loc[risk["outreach"] & (risk["assigned_as_of"] == as_of), "account_id"])
        for later, other in lists.items():
            if as_of < later < as_of + pd.Timedelta(days=horizon):
                by_id = other.set_index("account_id")
                assert not by_id.loc[sorted(controls), "outreach"].any()  # held out, never called
                assert by_id.loc[sorted(controls), "control"].all()  # and shown as control
                assert not (by_id.loc[sorted(treated), "control"] & (by_id.loc[sorted(treated), "assigned_as_of"] == later)).any()
                checked += 1
    assert checked == 4 + 4 + 3 + 2 + 1  # every (run, later run within 30 days) pair
    new_sets = [frozenset(r.loc[r["control"] & (r["assigned_as_of"] == d), "account_id"]) for d, r in lists.items()]
    assert len(set(new_sets)) == 6 and all(new_sets)  # every week draws its own new controls
    assert all(r["outreach"].sum() + (r["control"] & (r["assigned_as_of"] == d)).sum() == capacity for d, r in lists.items())


# --------------------------------------------------------------------------- statistics


def test_mantel_haenszel_risk_difference_by_hand() -> None:
    # stratum 1: control 3/10 churned, outreach 10/90; stratum 2: control 1/5, outreach 5/45
    # w1 = 10·90/100 = 9, w2 = 5·45/50 = 4.5
    # RD = (9·(0.3 − 1/9) + 4.5·(0.2 − 1/9)) / 13.5 = (1.7 + 0.4) / 13.5 = 7/45
    # P1 = (10²·10 − 90²·3 + 10·90·80/2)/100² = 1.27;  P2 = (5²·5 − 45²·1 + 5·45·40/2)/50² = 1.04
    # Q1 = (3·80 + 10·7)/200 = 1.55;                    Q2 = (1·40 + 5·4)/100 = 0.6
    # Var = (7/45 · 2.31 + 2.15) / 13.5² = 0.0137686…
    rd, se, low, high, p = mh_risk_difference([3, 1], [10, 5], [10, 5], [90, 45])
    assert rd == pytest.approx(7 / 45)
    var = (7 / 45 * 2.31 + 2.15) / 13.5**2
    assert se == pytest.approx(math.sqrt(var))
    assert (low, high) == pytest.approx((7 / 45 - 1.959964 * math.sqrt(var), 7 / 45 + 1.959964 * math.sqrt(var)), abs=1e-6)
    assert p == pytest.approx(0.18494, abs=1e-4)
    # a stratum with an empty group weighs nothing
    assert mh_risk_difference([3, 1, 4], [10, 5, 0], [10, 5, 9], [90, 45, 20])[0] == pytest.approx(7 / 45)
    assert all(math.isnan(v) for v in mh_risk_difference([1], [0], [1], [5]))


def test_one_stratum_reduces_to_the_plain_difference_and_wald_variance() -> None:
    rd, se, *_ = mh_risk_difference([5], [10], [2], [10])
    assert rd == pytest.approx(0.3) and se**2 == pytest.approx(0.5 * 0.5 / 10 + 0.2 * 0.8 / 10)


def restricted_rates_by_bisection(x1: int, n1: int, x0: int, n0: int, delta: float) -> tuple[float, float]:
    """(p1, p0) maximising the binomial likelihood under p1 − p0 = delta, found from scratch.

    The log-likelihood x1·log p1 + (n1 − x1)·log(1 − p1) + x0·log p0 + (n0 − x0)·log(1 − p0)
    is concave in p0 on [max(0, −δ), min(1, 1 − δ)], so its slope falls through zero once
    (or the maximum sits on an end): bisection on the slope's sign finds it to machine precision.
    """
    lo, hi = max(0.0, -delta), min(1.0, 1.0 - delta)

    def slope(p0: float) -> float:
        p1 = p0 + delta
        terms = ((x1, x1 / p1 if x1 else 0.0), (n1 - x1, -(n1 - x1) / (1 - p1) if n1 - x1 else 0.0))
        terms += ((x0, x0 / p0 if x0 else 0.0), (n0 - x0, -(n0 - x0) / (1 - p0) if n0 - x0 else 0.0))
        return sum(t for _, t in terms)

    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if slope(mid) > 0 else (lo, mid)
    return (lo + hi) / 2 + delta, (lo + hi) / 2


def stratified_score_by_brute_force(strata: list[tuple[int, int, int, int]], alpha: float = 0.05) -> tuple[float, float, float]:
    """The stratified Miettinen–Nurminen interval and p-value written out from the formula.

    Per stratum (x1 of n1 controls, x0 of n0 called churned, N = n1 + n0): weight w = n1·n0/N,
    Z(δ) = Σ w·(x1/n1 − x0/n0 − δ) / √(Σ w²·(p̃1(1 − p̃1)/n1 + p̃0(1 − p̃0)/n0)·N/(N − 1)),
    p̃ the rates restricted to differ by δ. The interval is {δ : |Z(δ)| ≤ z}, its ends found
    by bisection on Z (which falls as δ rises); p = 2·(1 − Φ(|Z(0)|)).
    """
    from scipy.stats import norm

    def z_of(delta: float) -> float:
        num = var = 0.0
        for x1, n1, x0, n0 in strata:
            total = n1 + n0
            w = n1 * n0 / total
            p1, p0 = restricted_rates_by_bisection(x1, n1, x0, n0, delta)
            num += w * (x1 / n1 - x0 / n0 - delta)
            var += w**2 * (p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0) * total / (total - 1)
        return num / math.sqrt(var) if var > 0 else 0.0

    def crossing(target: float, a: float, b: float) -> float:
        above_at_a = z_of(a) > target
        for _ in range(100):
            m = (a + b) / 2
            a, b = (m, b) if (z_of(m) > target) == above_at_a else (a, m)
        return (a + b) / 2

    z = norm.ppf(1 - alpha / 2)
    weights = sum(n1 * n0 / (n1 + n0) for _, n1, _, n0 in strata)
    rd = sum(n1 * n0 / (n1 + n0) * (x1 / n1 - x0 / n0) for x1, n1, x0, n0 in strata) / weights
    edge = 1 - 1e-12
    low = -1.0 if z_of(-edge) <= z else crossing(z, -edge, rd)
    high = 1.0 if z_of(edge) >= -z else crossing(-z, rd, edge)
    return low, high, float(2 * norm.sf(abs(z_of(0.0))))


def test_restricted_rates_maximise_the_likelihood() -> None:
    from churn.outreach.experiment import _restricted_mle

    for counts in ((8, 40, 30, 360), (3, 10, 10, 90), (0, 29, 16, 308), (5, 5, 0, 40)):
        for delta in (-0.3, -0.05, 0.0, 0.1, 0.4):
            r1, r0 = _restricted_mle(*(np.array([float(c)]) for c in counts), delta)
            assert (float(r1[0]), float(r0[0])) == pytest.approx(restricted_rates_by_bisection(*counts, delta), abs=1e-9), (counts, delta)


@pytest.mark.parametrize(
    "strata",
    [
        [(3, 10, 10, 90), (1, 5, 5, 45)],  # the hand-computed Mantel–Haenszel case
        [(0, 5, 3, 40), (0, 3, 1, 20), (2, 2, 1, 12)],  # zero cells, a stratum where every control churned
        [(12, 60, 20, 240), (2, 25, 30, 100)],  # strata pulling in opposite directions
        [(8, 40, 30, 360)],  # one stratum
        [(0, 29, 16, 308)],  # no churner among the controls
    ],
)
def test_stratified_score_interval_equals_an_independent_brute_force(strata: list[tuple[int, int, int, int]]) -> None:
    """Both sides solve the same equations to ~1e-12 (brentq / 100 bisection steps), so 1e-8 is
    numerical slack only: a wrong weight, variance factor or restricted rate moves the limits by
    1e-3 or more."""
    counts = [[s[i] for s in strata] for i in range(4)]
    assert mh_score_interval(*counts) == pytest.approx(stratified_score_by_brute_force(strata), abs=1e-8)


def test_score_interval_on_one_stratum_matches_published_values_and_statsmodels_test() -> None:
    from statsmodels.stats.proportion import test_proportions_2indep

    # Newcombe (1998, Statistics in Medicine 17:873–890), Table II, method 11 (Miettinen–Nurminen),
    # published to 4 decimals: 56/70 − 48/80, 10/10 − 0/20 and 0/10 − 0/20
    for counts, published in (((56, 70, 48, 80), (0.0528, 0.3382)), ((10, 10, 0, 20), (0.7156, 1.0)), ((0, 10, 0, 20), (-0.1658, 0.2844))):
        low, high, _ = mh_score_interval(*([c] for c in counts))
        assert (low, high) == pytest.approx(published, abs=5e-5), counts
    # statsmodels' score test at δ = 0 uses the pooled rate (its interval does not: issue #10269)
    for counts in ((8, 40, 30, 360), (3, 30, 10, 270), (56, 70, 48, 80)):
        assert mh_score_interval(*([c] for c in counts))[2] == pytest.approx(test_proportions_2indep(*counts, method="score", compare="diff").pvalue)


def test_pooled_score_interval_survives_empty_cells() -> None:
    # no churner among 29 controls vs 16 of 308 called: a Wald interval from the Sato variance
    # collapses onto (−7.7, −2.7) points and "p < 0.001"; the score interval does not
    assert mh_risk_difference([0], [29], [16], [308])[4] < 0.001
    low, high, p = mh_score_interval([0], [29], [16], [308])
    assert low < 0 < high and p == pytest.approx(0.2092, abs=1e-3)
    # several strata with zero cells, and all-churned / none-churned strata
    low, high, p = mh_score_interval([0, 0, 2], [5, 3, 2], [3, 1, 1], [40, 20, 12])
    assert -1 <= low < mh_risk_difference([0, 0, 2], [5, 3, 2], [3, 1, 1], [40, 20, 12])[0] < high <= 1 and 0 < p < 1
    assert mh_score_interval([0, 0], [5, 3], [0, 0], [40, 20])[2] == 1.0


def test_difference_sign_interval_and_degenerate_groups() -> None:
    diff, low, high, p = difference_test(8, 40, 30, 360)  # control 20 % vs outreach 8.3 %
    assert diff == pytest.approx(0.2 - 30 / 360) and low < diff < high and 0 < low and p < 0.05
    assert difference_test(0, 5, 0, 45)[3] == 1.0  # nobody churned: no evidence either way
    assert all(math.isnan(v) for v in difference_test(0, 0, 3, 10))


def hand_cohorts() -> pd.DataFrame:
    """Two matured runs: r1 — control 3/10 churned, outreach 10/90; r2 — control 1/5, outreach 5/45."""
    rows = []
    for run, as_of, (x1, n1, x0, n0) in (("r1", T, (3, 10, 10, 90)), ("r2", T + WEEK, (1, 5, 5, 45))):
        for arm, x, n in (("control", x1, n1), ("outreach", x0, n0)):
            churned = np.r_[np.ones(x), np.zeros(n - x)].astype(int)
            band = np.where(np.arange(n) % 2 == 0, "high", "medium")
            rows.append(pd.DataFrame({"run_id": run, "run_as_of": as_of, "horizon_days": 30, "account_id": [f"{run}{arm}{i}" for i in range(n)], "arm": arm, "risk_band": band, "churned": churned, "annual_value": 100.0}))
    return pd.concat(rows, ignore_index=True)


def test_uplift_table_per_run_and_pooled_equal_the_hand_computation() -> None:
    table = uplift_table(hand_cohorts())
    assert table.columns[:10].tolist() == ["scope", "band", "outreach_n", "outreach_churn", "control_n", "control_churn", "difference", "ci_low", "ci_high", "p_value"]
    overall = table[table["band"] == "all"].set_index("scope")
    assert overall.index.tolist() == ["r1", "r2", "pooled"]
    assert overall.loc["r1", ["outreach_n", "control_n"]].tolist() == [90, 10]
    assert overall.loc["r1", "difference"] == pytest.approx(0.3 - 1 / 9)
    pooled = overall.loc["pooled"]
    assert pooled[["outreach_n", "control_n", "runs"]].tolist() == [135, 15, 2]
    assert pooled["difference"] == pytest.approx(7 / 45)  # the Mantel–Haenszel estimate (hand-computed above)
    assert (pooled["ci_low"], pooled["ci_high"], pooled["p_value"]) == pytest.approx(mh_score_interval([3, 1], [10, 5], [10, 5], [90, 45]))
    assert pooled["ci_low"] < 7 / 45 < pooled["ci_high"]
    # revenue retained = difference × annual value of the outreach group (135 × 100)
    assert pooled["revenue_retained"] == pytest.approx(7 / 45 * 13_500)
    assert pooled["revenue_ci_low"] == pytest.approx(pooled["ci_low"] * 13_500)
    assert set(table["band"]) == {"all", "high", "medium"} and (table["analysis"] == "intention-to-treat").all()
    assert table["outreach_reached"].isna().all()  # no contact log


def test_per_protocol_rows_are_added_and_labelled_with_a_contact_log() -> None:
    cohorts = hand_cohorts()
    cohorts["reached"] = cohorts["account_id"].str.endswith(("0", "2", "4", "6"))
    table = uplift_table(cohorts)
    itt = table[(table["analysis"] == "intention-to-treat") & (table["scope"] == "pooled") & (table["band"] == "all")].iloc[0]
    pp = table[(table["analysis"] == "per-protocol") & (table["scope"] == "pooled") & (table["band"] == "all")].iloc[0]
    reached_outreach = cohorts[(cohorts["arm"] == "outreach") & cohorts["reached"]]
    assert itt["outreach_reached"] == pytest.approx(len(reached_outreach) / 135)  # the contact rate
    assert itt["control_reached"] == pytest.approx(cohorts[(cohorts["arm"] == "control")]["reached"].mean())
    assert pp["outreach_n"] == len(reached_outreach) and pp["control_n"] == (~cohorts.loc[cohorts["arm"] == "control", "reached"]).sum()


def test_power_sentence() -> None:
    # the issue's example: a 10 % control group, 20 % churn; 20 % → 15 % needs about 500 controls
    uplift = pd.DataFrame([{"scope": "pooled", "band": "all", "analysis": "intention-to-treat", "control_n": 100, "control_churn": 0.2, "outreach_n": 900, "runs": 5}])
    note = power_note(uplift)
    assert note.startswith("About 402 more control accounts are needed to detect a drop from 20.0 % to 15.0 % churn (502 in all")
    assert "about 21 more matured runs" in note
    enough = power_note(uplift.assign(control_n=600, outreach_n=5400))
    assert enough.startswith("The 600 control accounts so far are enough")
    assert "has churned yet" in power_note(uplift.assign(control_churn=0.0))


# --------------------------------------------------------------------------- contacts


def test_contact_log_is_checked_and_typed() -> None:
    raw = pd.DataFrame({"account_id": ["a1", "a2"], "contacted_at": ["2024-03-05", "2024-03-06T10:00:00+01:00"], "outcome": ["reached", None]})
    log = parse_contacts(raw, "log.csv")
    assert log["contacted_at"].tolist() == [pd.Timestamp("2024-03-05", tz="UTC"), pd.Timestamp("2024-03-06 09:00", tz="UTC")]
    with pytest.raises(ValueError, match=r"log.csv: column contacted_at: 1 row\(s\) not an ISO 8601 date/time — data rows 2 \('yesterday'\)"):
        parse_contacts(raw.assign(contacted_at=["2024-03-05", "yesterday"]), "log.csv")
    with pytest.raises(ValueError, match="log.csv: missing column"):
        parse_contacts(raw.drop(columns="contacted_at"), "log.csv")


def test_reached_only_counts_contacts_inside_the_horizon_that_reached_someone() -> None:
    cohorts = pd.DataFrame({"run_id": ["r1"] * 4, "account_id": ["a", "b", "c", "d"], "run_as_of": [T] * 4, "horizon_days": [30] * 4})
    contacts = pd.DataFrame(
        {
            "account_id": ["a", "b", "c", "d"],
            "contacted_at": [T + pd.Timedelta(days=30), T, T + WEEK, T + WEEK],
            "outcome": ["reached", "reached", "No answer", ""],
        }
    )
    # the window is [as_of, as_of + horizon): a call on the list's day counts, one 30 days later does not
    assert reached_in_window(cohorts, contacts).tolist() == [False, True, False, True]


# --------------------------------------------------------------------------- six weekly runs of churn score


@pytest.fixture(scope="module")
def weekly(tmp_path_factory: pytest.TempPathFactory, training_data, trained):  # type: ignore[no-untyped-def]
    """Six weekly `score_run`s into one folder, then two dates re-run concurrently."""
    from churn.config import ScoreConfig
    from churn.data.synthetic import write
    from churn.jobs.weekly import score_run

    data, _, _ = training_data
    root = tmp_path_factory.mktemp("weekly")
    write(data, str(root / "raw"))
    config = ScoreConfig(capacity=300, control_share=0.2, max_exact_reasons=400)
    dates = [pd.Timestamp("2024-04-01", tz="UTC") + k * WEEK for k in range(6)]

    def run(as_of: pd.Timestamp):  # type: ignore[no-untyped-def]
        return score_run(root / "raw", as_of=as_of, model=trained.model, model_label="test", out_dir=root / "scores", config=config)

    results = {d: run(d) for d in dates}
    # two runs at once from two threads (re-running two dates): the folder lock serialises them
    reruns: dict = {}
    threads = [threading.Thread(target=lambda d=d: reruns.__setitem__(d, run(d))) for d in (dates[2], dates[5])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rerun = reruns[dates[2]]
    return root, dates, results, rerun


def test_weekly_runs_hold_controls_out_for_their_horizon(weekly) -> None:  # type: ignore[no-untyped-def]
    from churn.outreach.runs import list_runs, load_risk_list

    root, dates, results, _ = weekly
    history = list_runs(root / "scores")
    assert history["as_of"].tolist() == dates  # six runs, the re-run replaced its date
    lists = {r.as_of: load_risk_list(root / "scores", r.run_id) for r in history.itertuples()}
    pairs = 0
    for as_of, risk in lists.items():
        controls = risk.loc[risk["control"] & (risk["assigned_as_of"] == as_of), "account_id"]
        assert len(controls) > 0
        for later, other in lists.items():
            if as_of < later < as_of + pd.Timedelta(days=30):
                again = other[other["account_id"].isin(controls)]
                assert not again["outreach"].any(), f"a control of {as_of:%Y-%m-%d} is called on {later:%Y-%m-%d}"
                assert again["control"].all() and (again["assigned_as_of"] == as_of).all()
                pairs += 1
        assert results[as_of].record["control"] == len(controls)  # new controls only
    assert pairs == 4 + 4 + 3 + 2 + 1  # every (run, later run within 30 days) pair was checked
    # each week draws its own new controls
    new = [frozenset(r.loc[r["control"] & (r["assigned_as_of"] == d), "account_id"]) for d, r in lists.items()]
    assert len(set(new)) == 6
    # capacity: outreach + new controls, held controls use none
    assert all(r["outreach"].sum() + (r["control"] & (r["assigned_as_of"] == d)).sum() == 300 for d, r in lists.items())
    assert results[dates[1]].record["held_controls"] > 0


def test_rerunning_a_date_reproduces_its_draw_and_replaces_the_run(weekly) -> None:  # type: ignore[no-untyped-def]
    from churn.outreach.runs import read_log

    root, dates, results, rerun = weekly
    first = results[dates[2]]
    assert rerun.record["supersedes"] == first.record["run_id"]
    pd.testing.assert_frame_equal(
        first.risk[["account_id", "outreach", "control", "assigned_as_of"]], rerun.risk[["account_id", "outreach", "control", "assigned_as_of"]]
    )
    assert rerun.record["later_runs_to_rescore"] == []  # same draw: the later runs stay valid
    assert len(read_log(root / "scores")) == 8  # every publication is logged, the concurrent ones too …
    assert (root / "scores" / "runs" / first.record["run_id"]).is_dir()  # … and the replaced run kept for audits


def test_scoring_an_earlier_date_after_a_later_one_names_the_runs_to_rescore(weekly, trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from churn.config import ScoreConfig
    from churn.jobs.weekly import score_run

    root, dates, _, _ = weekly
    config = ScoreConfig(capacity=300, control_share=0.2, max_exact_reasons=400)
    late = score_run(root / "raw", as_of=dates[3], model=trained.model, model_label="test", out_dir=tmp_path / "s", config=config)
    assert late.record["later_runs_to_rescore"] == []
    early = score_run(root / "raw", as_of=dates[1], model=trained.model, model_label="test", out_dir=tmp_path / "s", config=config)
    assert early.record["later_runs_to_rescore"] == [f"{dates[3]:%Y-%m-%d}"]
    again = score_run(root / "raw", as_of=dates[3], model=trained.model, model_label="test", out_dir=tmp_path / "s", config=config)
    assert again.record["later_runs_to_rescore"] == []
    held = early.risk.loc[early.risk["control"], "account_id"]
    assert not again.risk.loc[again.risk["account_id"].isin(held), "outreach"].any()  # re-scored in date order: consistent


def test_matured_runs_are_judged_by_their_own_definition(weekly, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A run stored with a 7-day horizon is labelled over 7 days, whatever the current model says."""
    import json

    from churn.config import ChurnDefinition
    from churn.data.contract import load
    from churn.features.labels import label_accounts
    from churn.outreach.history import past_results

    root, dates, _, _ = weekly
    scores = tmp_path / "scores"
    shutil.copytree(root / "scores", scores, symlinks=True)
    log = scores / "runs.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    for r in records:
        if r["as_of"] == "2024-04-01":
            r["churn"]["horizon_days"] = 7
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    data = load(root / "raw")
    end = pd.Timestamp("2024-04-20", tz="UTC")  # only the 7-day run has matured by then
    past = past_results(scores, data.accounts, data.interactions, ChurnDefinition(horizon_days=30), data_end=end)
    assert set(past.outcomes["run_as_of"]) == {"2024-04-01"}
    labels = label_accounts(data.accounts, data.interactions, as_of=dates[0], definition=ChurnDefinition(horizon_days=7))
    control = past.cohorts[past.cohorts["arm"] == "control"]
    expected = labels.set_index("account_id").loc[control["account_id"], "churned"]
    assert control["churned"].tolist() == expected.tolist()
    pooled = past.uplift[(past.uplift["scope"] == "pooled") & (past.uplift["band"] == "all")].iloc[0]
    assert pooled["control_churn"] == pytest.approx(expected.mean())


def test_contacts_and_uplift_through_the_cli(weekly, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from churn.cli.commands import app
    from churn.outreach.runs import latest_run, run_dir

    root, dates, results, _ = weekly
    scores = tmp_path / "scores"
    shutil.copytree(root / "scores", scores, symlinks=True)
    risk = results[dates[0]].risk
    called = risk.loc[risk["outreach"], "account_id"].head(40).tolist()
    control = risk.loc[risk["control"], "account_id"].head(2).tolist()
    log = pd.DataFrame(
        {"account_id": called + control, "contacted_at": "2024-04-03T10:00:00", "outcome": ["reached"] * 30 + ["no answer"] * 10 + ["reached"] * 2}
    )
    log.to_csv(tmp_path / "calls.csv", index=False)
    runner = CliRunner()
    ok = runner.invoke(app, ["contacts", "--scores", str(scores), "--file", str(tmp_path / "calls.csv")])
    assert ok.exit_code == 0, ok.output
    assert "Added 42 contact(s)" in ok.output and "2 of" in ok.output and "control accounts contacted" in ok.output
    again = runner.invoke(app, ["contacts", "--scores", str(scores), "--file", str(tmp_path / "calls.csv")])
    assert "Added 0 contact(s) (42 already in the log)" in again.output

    log.assign(contacted_at=["2024-04-03"] * 41 + ["03/04/2024"]).to_csv(tmp_path / "bad.csv", index=False)
    bad = runner.invoke(app, ["contacts", "--scores", str(scores), "--file", str(tmp_path / "bad.csv")])
    assert bad.exit_code == 2 and "bad.csv: column contacted_at" in bad.output and "data rows 42" in bad.output
    assert "Traceback" not in bad.output

    loop = runner.invoke(app, ["retention", "--data", str(root / "raw"), "--scores", str(scores)])
    assert loop.exit_code == 0, loop.output
    assert "Effect of outreach, intention-to-treat" in loop.output and "Per-protocol" in loop.output and "NOT a randomised" in loop.output
    assert "Power:" in loop.output and "Contact log:" in loop.output
    uplift = pd.read_csv(scores / "uplift.csv")
    assert (run_dir(scores, latest_run(scores)["run_id"]) / "uplift.csv").exists()
    assert set(uplift["analysis"]) == {"intention-to-treat", "per-protocol"}
    first = uplift[(uplift["scope"] == results[dates[0]].record["run_id"]) & (uplift["band"] == "all")].set_index("analysis")
    assert first.loc["intention-to-treat", "outreach_reached"] == pytest.approx(30 / first.loc["intention-to-treat", "outreach_n"])
    assert first.loc["per-protocol", "outreach_n"] == 30
    assert first.loc["per-protocol", "control_n"] == first.loc["intention-to-treat", "control_n"] - 2
    page = (scores / "report.html").read_text()
    assert 'id="uplift-table"' in page and 'id="uplift-table-per-protocol"' in page and 'id="power-note"' in page
