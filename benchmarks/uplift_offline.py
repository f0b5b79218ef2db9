"""Whom to call, offline: what would each learner's list save, on one simulated experiment?

The closed loop (``benchmarks/uplift.py``) judges a learner by ~60 saved customers a seed, a
count that moves by ±15 between designs that differ little, at ~4 minutes a seed. This
benchmark asks the same question without the outcomes' noise, so a learner can be developed
against it in a few minutes:

1. run the ``uplift`` policy's experiment once (``churn simulate``'s own job, one policy, with
   the closed loop's exploration share): its matured cohort rows are what any learner would
   have learned from;
2. at ``--dates`` weekly dates, fit each learner on the rows matured by then, score that
   week's whole customer base (the accounts alive in the plain business), rank it as the
   product ranks (:func:`churn.outreach.policy.policy_ranks`, the call and offer costs
   included) and take the first ``K`` callable accounts, K = the capacity less the explored
   share (fewer where fewer are callable: a negative effect is never called);
3. count what calling them would save *in expectation*, from the simulation's truth:
   reach × P(the account churns within the window without a call) × the planted relative cut
   1 − p₁/p₀ of its response group that month — what the closed loop's coupling applies
   (:func:`churn.data.responding.coupling`); for a sleeping dog, minus the churn it adds
   among the accounts that would have stayed. P(churn within the window) comes from the
   planted monthly hazards of the date's month and the next (:func:`window_probability`), so
   it includes what the churn model foresees of next month; the planted effect that
   ``expected_saved`` counts uses the date's month only.

Rankings: ``risk``, ``risk × value`` (the default list) and, for each learner, ``uplift``
(expected value − costs, the policy's objective); beside them two that are not the product's:
each learner's cut in churn alone (``… cut``, the customers' objective), and the ``informed``
estimate (told each account's planted group, as ``benchmarks/uplift.py --informed``) and the
planted ``truth`` (the expected saves above as the effect: what a perfect learner would rank
by), both ways. Printed: expected customers saved (÷ risk's) and revenue saved (÷ risk ×
value's) over the dates — the two ratios the issue's goal is judged on.

What this view leaves out of the closed loop: each date is scored on its own (an account can
count at several dates; no account is under an earlier call's effect, none skipped for being
in outreach already, none held out as a control), and every ranking uses the warm-up churn
model's risk (the closed loop retrains it monthly). The experiment the learners fit on is the
closed loop's own.

Then, on all the experiment's matured rows, how much its outcomes say about *who* responds
(:func:`split_evidence`): the likelihood-ratio statistic of splitting the called rows' call
effect by the planted group (callbacks against the rest; analysis only) and of the best split
on one feature, against the critical value a learner that searches those splits with a 1 %
test (Bonferroni-corrected) must pass.

    python benchmarks/uplift_offline.py                         # 20,000 accounts, seed 11, 5 dates
    python benchmarks/uplift_offline.py --learners shift,t,x --seed 12
    python benchmarks/uplift_offline.py --accounts 600 --capacity 20 --cycles 8 --dates 2 --learners shift,t,x   # toy size
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats

from churn.data.responding import coupling, window_churn
from churn.features.labels import LABEL
from churn.jobs.informed import GROUP, fit_informed, no_call_model
from churn.jobs.simulate import SimulationConfig, _matured, _prepare, _run_policy, _Shared, _World
from churn.modeling.calibration import logit
from churn.modeling.uplift import TREATED, UpliftSettings, common_shift, fit_uplift, sigmoid
from churn.outreach.policy import policy_columns, policy_ranks


def window_probability(causes: pd.DataFrame, ids: pd.Series, as_of: pd.Timestamp, horizon_days: int) -> np.ndarray:
    """P(churning in [as_of, as_of + horizon)) without a call, per id, from the planted monthly
    hazards of ``as_of``'s month and the next: the generator draws a churn uniformly within its
    month, from a hazard drawn at the end of the month before. An account not at risk in the
    date's month counts 0. The next month's hazard exists only for accounts still there at the
    end of this one; for the others (they churn this month in the plain business) the month's
    own hazard stands in — taking 0 would use the realised outcome. A window reaching past the
    next month (a few days, from the last days of January) counts that month's hazard for them."""
    month = as_of.normalize().replace(day=1)
    following = month + pd.DateOffset(months=1)
    after = following + pd.DateOffset(months=1)

    def hazard(start: pd.Timestamp) -> np.ndarray:
        of_month = causes[causes["month_start"] == start]
        return of_month.set_index("account_id")["hazard"].reindex(ids.to_numpy()).to_numpy(dtype=float)

    h1, h2 = hazard(month), hazard(following)
    h2 = np.where(np.isnan(h2), h1, h2)
    h1, h2 = np.nan_to_num(h1), np.nan_to_num(h2)
    rest = (following - as_of) / (following - month)  # share of this month still to come
    spill = min(1.0, max(0.0, (as_of + pd.Timedelta(days=horizon_days) - following) / (after - following)))
    this_month = h1 * rest / np.maximum(1.0 - h1 * (1.0 - rest), 1e-12)  # alive at as_of: the month's draw not yet made
    return this_month + (1.0 - this_month) * h2 * spill


def first_called(frame: pd.DataFrame, ranking: str, k: int, config: SimulationConfig) -> np.ndarray:
    """Positions of the first ``k`` callable accounts of ``frame`` by the product's ranking (or,
    for ``"cut"``, by the estimated cut in churn alone, a negative one never called, ties by risk)."""
    if ranking == "cut":
        uplift, risk = frame["uplift"].to_numpy(dtype=float), frame["churn_probability"].to_numpy(dtype=float)
        ok = uplift >= 0
        order = np.lexsort((-risk, -np.where(ok, uplift, -np.inf)))
    else:
        ranks, ok = policy_ranks(frame, ranking, config.costs)  # type: ignore[arg-type]
        order = np.argsort(ranks, kind="stable")
    return order[ok[order]][:k]


def experiment(config: SimulationConfig) -> tuple[_Shared, _World]:
    """The business and the uplift policy's run on it (its cohorts: what a learner learns from)."""
    t0 = time.monotonic()
    shared = _prepare(config)
    world = _run_policy(shared, config, "uplift", lambda _msg: None)
    print(f"the uplift policy's experiment: {config.accounts:,} accounts × {config.cycles} weekly cycles, capacity {config.capacity}, "
          f"explore {config.explore_share:.0%}, seed {config.seed} ({time.monotonic() - t0:.0f} s)")
    return shared, world


def evaluate(shared: _Shared, world: _World, config: SimulationConfig, learners: list[str], dates: int) -> pd.DataFrame:
    """Expected customers and revenue saved by each ranking's first K callable accounts at
    ``dates`` weekly dates (one row per date and ranking)."""
    horizon = pd.Timedelta(days=config.horizon_days)
    causes = shared.data.causes.assign(account_id=shared.data.causes["account_id"].astype("str"))
    k = config.ranked_calls
    matured_two = [c for c, d in enumerate(shared.dates) if len(shared.dates) > 1 and d >= shared.dates[1] + horizon]  # two cohorts matured
    if not matured_two:
        raise SystemExit(f"{config.cycles} weekly cycles: no date has two matured cohorts (the horizon is {config.horizon_days} days); give more --cycles")
    records = []
    for c in np.unique(np.linspace(matured_two[0], len(shared.dates) - 1, dates).round().astype(int)):
        as_of = shared.dates[c]
        rows = _matured(world, as_of, horizon)
        if rows.empty or rows[TREATED].nunique() < 2:
            continue
        accounts = shared.index[c]
        alive = shared.plain_churn[accounts] > as_of.value
        population, accounts = shared.features[c][alive].reset_index(drop=True), accounts[alive]
        hazard, shift = shared.hazard[c][alive], shared.shift[c][alive]
        p0, p1 = window_churn(hazard, 0.0, config.horizon_days), window_churn(hazard, shift, config.horizon_days)
        ids = population["account_id"].astype("str")
        q = window_probability(causes, ids, as_of, config.horizon_days)
        keep, push = coupling(p0, p1)  # what a call does to a churner and to a stayer, as the closed loop applies it
        saved = config.reach_rate * (q * (1.0 - keep) - (1.0 - q) * push)
        value, risk = shared.value[accounts], shared.model.predict_proba(population)
        frame = pd.DataFrame({"account_id": ids, "churn_probability": risk, "annual_value": value, "revenue_at_risk": risk * value, "offer": shared.offer[c][alive]})
        picks = {"risk": first_called(frame, "risk", k, config), "risk × value": first_called(frame, "value", k, config)}
        settings = UpliftSettings(seed=config.seed)
        effects = {learner: fit_uplift(rows, replace(settings, learner=learner), baseline=shared.warm).predict(population) for learner in learners}  # type: ignore[arg-type]
        effects["informed"] = fit_informed(rows, settings, baseline=shared.warm).predict(population.assign(**{GROUP: shared.group[c][alive]}))
        effects["truth"] = pd.DataFrame({"uplift": saved})
        for name, predictions in effects.items():
            with_effect = frame.assign(**policy_columns(frame, predictions.reset_index(drop=True)))
            picks[name] = first_called(with_effect, "uplift", k, config)
            picks[f"{name} cut"] = first_called(with_effect, "cut", k, config)
        for name, top in picks.items():
            records.append({"cycle": int(c), "ranking": name, "customers": float(saved[top].sum()), "revenue": float((saved[top] * value[top]).sum())})
    if not records:
        raise SystemExit("no date had matured cohorts with both called and not-called accounts: give more --cycles or --accounts")
    return pd.DataFrame(records)


def _log_likelihood(y: np.ndarray, z: np.ndarray) -> float:
    p = np.clip(sigmoid(z), 1e-12, 1 - 1e-12)
    return float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))


def split_statistic(y: np.ndarray, called: np.ndarray, offset: np.ndarray, side: np.ndarray) -> float:
    """Likelihood-ratio statistic (1 degree of freedom) for "the call's log-odds shift differs
    between the two sides of ``side``": each side's no-call calibration from its not-called
    rows (:func:`common_shift` on ``offset``, the no-call log-odds), then one shift for all the
    called rows against one per side."""
    cal = np.where(side, common_shift(y[~called & side], offset[~called & side])[0], common_shift(y[~called & ~side], offset[~called & ~side])[0])
    z = offset + cal
    common = common_shift(y[called], z[called])[0]
    fit = 0.0
    for part in (called & side, called & ~side):
        fit += _log_likelihood(y[part], z[part] + common_shift(y[part], z[part])[0])
    return 2.0 * (fit - _log_likelihood(y[called], z[called] + common))


def split_evidence(rows: pd.DataFrame, warm: pd.DataFrame, seed: int, min_called: int = 200) -> dict[str, object]:
    """How much the experiment's outcomes say about *who* responds: the statistic of the split a
    learner would need — the planted callbacks against every other called row (analysis only:
    the planted group) — and of the best split on one feature (deciles of the called rows, each
    category), with the 1 % Bonferroni critical value over the candidate splits, as a learner
    searching them with a test would need to pass. No-call log-odds: the shift learner's μ₀."""
    settings = UpliftSettings(seed=seed)
    no_call = no_call_model(rows, settings, warm)
    x, y, called = no_call.prepare(rows), rows[LABEL].to_numpy(dtype=float), rows[TREATED].to_numpy(dtype=bool)
    offset = logit(no_call.control_model.predict_proba(x)[:, 1])
    candidates: list[tuple[float, str]] = []
    for col in x.columns:
        values = x[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            sides = {f"{col} = {level}": (values.astype("str") == str(level)).to_numpy() for level in values.cat.categories}
        else:
            numbers = values.to_numpy(dtype=float)
            cuts = np.unique(np.nanquantile(numbers[called], np.linspace(0.1, 0.9, 9))) if np.isfinite(numbers[called]).any() else []
            sides = {f"{col} ≤ {q:.4g}": numbers <= q for q in cuts}
        for name, side in sides.items():
            if min((called & side).sum(), (called & ~side).sum()) >= min_called and min((~called & side).sum(), (~called & ~side).sum()) >= 30:
                candidates.append((split_statistic(y, called, offset, side), name))
    best = max(candidates) if candidates else (float("nan"), "none")
    truth = split_statistic(y, called, offset, rows[GROUP].astype("str").to_numpy() == "callback")
    return {"called": int(called.sum()), "truth": truth, "best": best, "candidates": len(candidates), "critical": float(stats.chi2.isf(0.01 / max(len(candidates), 1), 1))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--capacity", type=int, default=300)
    parser.add_argument("--cycles", type=int, default=26)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--explore-share", type=float, default=0.1, help="the experiment's exploration share (benchmarks/uplift.py's default)")
    parser.add_argument("--dates", type=int, default=5, help="weekly dates evaluated, spread from the first with two matured cohorts to the last cycle")
    parser.add_argument("--learners", default="shift", help="the product's learners to rank by (comma-separated: shift, t, x)")
    args = parser.parse_args()
    config = SimulationConfig(accounts=args.accounts, capacity=args.capacity, cycles=args.cycles, seed=args.seed, explore_share=args.explore_share, policies=("uplift",))
    shared, world = experiment(config)
    table = evaluate(shared, world, config, [s for s in args.learners.split(",") if s], args.dates)
    total = table.groupby("ranking", sort=False)[["customers", "revenue"]].sum()
    cycles = ", ".join(str(c) for c in sorted(table["cycle"].unique()))
    print(f"expected saves of each ranking's first {config.ranked_calls} callable accounts per date, summed over cycles {cycles}:")
    for name, row in total.iterrows():
        print(f"   {name:<18} customers {row['customers']:7.1f} ({row['customers'] / total.loc['risk', 'customers']:.2f}× risk)   "
              f"revenue {row['revenue']:11,.0f} ({row['revenue'] / total.loc['risk × value', 'revenue']:.2f}× risk × value)")

    rows = _matured(world, shared.dates[-1] + pd.Timedelta(days=7 + config.horizon_days), pd.Timedelta(days=config.horizon_days))
    evidence = split_evidence(rows, shared.warm, config.seed)
    best_statistic, best_split = evidence["best"]  # type: ignore[misc]
    print(f"evidence for a split, all {evidence['called']:,} called rows of the {config.cycles} cycles: the planted callbacks against the rest {evidence['truth']:.1f}; "
          f"the best of {evidence['candidates']} one-feature splits {best_statistic:.1f} ({best_split}); 1 % critical value with the Bonferroni correction {evidence['critical']:.1f}")


if __name__ == "__main__":
    main()
