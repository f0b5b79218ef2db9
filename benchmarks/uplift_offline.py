"""Whom to call, offline: what would each learner's list save, on one simulated experiment?

The closed loop (``benchmarks/uplift.py``) judges a learner by ~60 saved customers a seed, a
count that moves by ±15 between designs that differ little, at ~4 minutes a seed. This
benchmark asks the same question without the outcomes' noise, so a learner can be developed
against it in a minute or two:

1. run the ``uplift`` policy's experiment once (``churn simulate``'s own job, one policy):
   its matured cohort rows are what any learner would have learned from;
2. at ``--dates`` weekly dates, fit each learner on the rows matured by then, score that
   week's whole customer base (the accounts alive in the plain business), and take the top
   ``K`` (the capacity less the explored share) by each ranking;
3. count what calling them would save *in expectation*, from the simulation's truth:
   reach × P(the account churns within the window without a call) × the planted relative cut
   1 − p₁/p₀ of its response group that month — what the closed loop's coupling applies
   (:func:`churn.data.responding.called_outcome`); for a sleeping dog, minus the churn it adds
   among the accounts that would have stayed. P(churn within the window) comes from the
   planted monthly hazards of the date's month and the next (the generator draws a churn
   uniformly in its month), so it includes what the churn model foresees of next month;
   the planted effect that ``expected_saved`` counts uses the date's month only.

Rankings, each as the product ranks (higher first; ties, "no effect found", by risk × value):
``risk``, ``risk × value`` (the default list), for each learner its expected value
(``uplift × value``: the policy's objective without the call's cost, which is the same for
every account) and its cut in churn alone (``… cut``, the customers' objective), the
``informed`` estimate (told each account's planted group, as in ``benchmarks/uplift.py
--informed``), and the planted truth ranked both ways (``truth``: what a perfect learner
would rank by). Printed: expected customers saved (÷ risk's) and revenue saved (÷ risk ×
value's) over the dates — the two ratios the issue's goal is judged on.

    python benchmarks/uplift_offline.py                         # 20,000 accounts, seed 11, 5 dates
    python benchmarks/uplift_offline.py --learners shift,t,x --seed 12
    python benchmarks/uplift_offline.py --accounts 600 --capacity 20 --cycles 8 --dates 2   # toy size
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from churn.data.responding import window_churn
from churn.jobs.informed import GROUP, fit_informed
from churn.jobs.simulate import SimulationConfig, _matured, _prepare, _run_policy
from churn.modeling.uplift import UpliftSettings, fit_uplift


def window_probability(causes: pd.DataFrame, ids: pd.Series, as_of: pd.Timestamp, horizon_days: int) -> np.ndarray:
    """P(churning in [as_of, as_of + horizon)) without a call, per id, from the planted monthly
    hazards of ``as_of``'s month and the next (0 where an account is not at risk that month):
    the generator draws a churn uniformly within its month."""
    month = as_of.normalize().replace(day=1)
    following = month + pd.DateOffset(months=1)
    after = following + pd.DateOffset(months=1)

    def hazard(start: pd.Timestamp) -> np.ndarray:
        of_month = causes[causes["month_start"] == start]
        return of_month.set_index("account_id")["hazard"].reindex(ids.to_numpy()).fillna(0.0).to_numpy(dtype=float)

    h1, h2 = hazard(month), hazard(following)
    rest = (following - as_of) / (following - month)  # share of this month still to come
    spill = max(0.0, (as_of + pd.Timedelta(days=horizon_days) - following) / (after - following))
    this_month = h1 * rest / np.maximum(1.0 - h1 * (1.0 - rest), 1e-12)  # alive at as_of: the month's draw not yet made
    return this_month + (1.0 - this_month) * h2 * spill


def ranking_scores(uplift: np.ndarray, risk: np.ndarray, value: np.ndarray, name: str) -> dict[str, np.ndarray]:
    """``name`` ranked by expected value and by the cut alone; a non-positive effect is never
    called (last), and ties — no effect found — fall back to risk × value."""
    tie = 1e-12 * risk * value / max(float(np.max(risk * value)), 1e-12)
    return {
        name: np.where(uplift > 0, uplift * value, -1.0) + tie,
        f"{name} cut": np.where(uplift > 0, uplift, -1.0) + tie,
    }


def evaluate(config: SimulationConfig, learners: list[str], dates: int) -> pd.DataFrame:
    """Expected customers and revenue saved by each ranking's top K at ``dates`` weekly dates."""
    t0 = time.monotonic()
    shared = _prepare(config)
    world = _run_policy(shared, config, "uplift", lambda _msg: None)
    print(f"the uplift policy's experiment: {config.accounts:,} accounts × {config.cycles} weekly cycles, capacity {config.capacity}, seed {config.seed} ({time.monotonic() - t0:.0f} s)")
    horizon = pd.Timedelta(days=config.horizon_days)
    causes = shared.data.causes.assign(account_id=shared.data.causes["account_id"].astype("str"))
    k = config.capacity - int(round(config.explore_share * config.capacity))
    matured_two = [c for c, d in enumerate(shared.dates) if len(shared.dates) > 1 and d >= shared.dates[1] + horizon]  # two cohorts matured
    if not matured_two:
        raise SystemExit(f"{config.cycles} weekly cycles: no date has two matured cohorts (the horizon is {config.horizon_days} days); give more --cycles")
    first = matured_two[0]
    records = []
    for c in np.unique(np.linspace(first, len(shared.dates) - 1, dates).round().astype(int)):
        as_of = shared.dates[c]
        rows = _matured(world, as_of, horizon)
        if rows.empty or rows["treated"].nunique() < 2:
            continue
        accounts = shared.index[c]
        alive = shared.plain_churn[accounts] > as_of.value
        population, accounts = shared.features[c][alive].reset_index(drop=True), accounts[alive]
        hazard, shift = shared.hazard[c][alive], shared.shift[c][alive]
        p0, p1 = window_churn(hazard, 0.0, config.horizon_days), window_churn(hazard, shift, config.horizon_days)
        q = window_probability(causes, population["account_id"].astype("str"), as_of, config.horizon_days)
        with np.errstate(divide="ignore", invalid="ignore"):
            helps = np.where(p0 > 0, 1.0 - np.minimum(p1 / p0, 1.0), 0.0)
            hurts = np.where(p0 < 1, np.maximum(p1 - p0, 0.0) / (1.0 - p0), 0.0)
        saved = config.reach_rate * (q * helps - (1.0 - q) * hurts)
        value, risk = shared.value[accounts], shared.model.predict_proba(population)
        scores = {"risk": risk, "risk × value": risk * value}
        settings = UpliftSettings(seed=config.seed)
        for learner in learners:
            model = fit_uplift(rows, replace(settings, learner=learner), baseline=shared.warm)  # type: ignore[arg-type]
            scores.update(ranking_scores(model.predict(population)["uplift"].to_numpy(), risk, value, learner))
        informed = fit_informed(rows, settings, baseline=shared.warm)
        scores.update(ranking_scores(informed.predict(population.assign(**{GROUP: shared.group[c][alive]}))["uplift"].to_numpy(), risk, value, "informed"))
        scores.update(ranking_scores(config.reach_rate * q * helps, risk, value, "truth"))
        for name, score in scores.items():
            top = np.argsort(-score, kind="stable")[:k]
            records.append({"cycle": int(c), "ranking": name, "customers": float(saved[top].sum()), "revenue": float((saved[top] * value[top]).sum())})
    return pd.DataFrame(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--capacity", type=int, default=300)
    parser.add_argument("--cycles", type=int, default=26)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--dates", type=int, default=5, help="weekly dates evaluated, spread from the first with two matured cohorts to the last cycle")
    parser.add_argument("--learners", default="shift", help="the product's learners to rank by (comma-separated: shift, t, x)")
    args = parser.parse_args()
    config = SimulationConfig(accounts=args.accounts, capacity=args.capacity, cycles=args.cycles, seed=args.seed, policies=("uplift",))
    table = evaluate(config, [s for s in args.learners.split(",") if s], args.dates)
    total = table.groupby("ranking", sort=False)[["customers", "revenue"]].sum()
    cycles = ", ".join(str(c) for c in sorted(table["cycle"].unique()))
    print(f"expected saves of each ranking's top {args.capacity - int(round(config.explore_share * args.capacity))} per date, summed over cycles {cycles}:")
    for name, row in total.iterrows():
        print(f"   {name:<18} customers {row['customers']:7.1f} ({row['customers'] / total.loc['risk', 'customers']:.2f}× risk)   "
              f"revenue {row['revenue']:11,.0f} ({row['revenue'] / total.loc['risk × value', 'revenue']:.2f}× risk × value)")


if __name__ == "__main__":
    main()
