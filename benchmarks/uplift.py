"""Whom to call, in the closed loop: does ranking by the effect of a call beat ranking by risk?

Runs ``churn simulate``'s job (:func:`churn.jobs.simulate.simulate`) on several seeds:

1. the responding business (planted responses: the riskiest often already decided, Ascarza 2018):
   risk, value (risk × value) and uplift at equal capacity, and the ceiling: an oracle that ranks
   by the planted effect × value (what no product can know; same capacity, reach and costs) — customers saved, uplift / risk (goal
   ≥ 1.3×), revenue retained uplift vs value; and what only a simulation can say: how the learned
   effect tracks the planted one (Spearman, against the risk score's) on the held-out cohorts;
2. homogeneous effects (every account responds alike): uplift − risk customers saved, with a
   t interval over the seeds (uplift should be no worse);
3. the plain business (calls change nothing): does the gate ever switch to uplift? (must not);
4. the learned uplift model's Qini on held-out cohorts, with its bootstrap interval, after 8,
   16 and the last cycle (uplift policy, planted responses), beside the Qini the planted effect
   itself scores on the same rows (what the evaluation's noise allows);
5. the aligned business (risk and response agree, the first planted world): the same three
   policies, and whether the gate switched (it should not; if it does, uplift must not lose).

With ``--informed`` part 1 also runs the informed policy (:mod:`churn.jobs.informed`): the
uplift policy in every respect but told each account's planted response group, its effects
learned from its own experiment — the ceiling of a learned policy at this experiment size.

Issue size: ``--accounts 20000 --cycles 26 --seeds 3``; ``--first-seed`` picks seeds not used
while developing. Toy size (tests/test_benchmarks.py):
``--accounts 600 --cycles 3 --capacity 20 --seeds 1``.
"""

from __future__ import annotations

import argparse
import time
from typing import get_args

import numpy as np
from scipy import stats

from churn.jobs.simulate import SimulationConfig, simulate
from churn.modeling.uplift import Learner


def by_policy(record: dict) -> dict[str, dict]:
    return {p["policy"]: p for p in record["policies"]}


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % t interval over seeds (NaN width with one seed)."""
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return float(a.mean()), float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a))
    return float(a.mean()), float(a.mean() - half), float(a.mean() + half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--cycles", type=int, default=26)
    parser.add_argument("--capacity", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--explore-share", type=float, default=0.1)
    parser.add_argument("--retrain-every", type=int, default=4)
    parser.add_argument("--informed", action="store_true", help="Planted part: also run the informed policy (the uplift policy told each account's planted response group; ~1/4 more time).")
    parser.add_argument("--learner", default="shift", choices=get_args(Learner), help="The uplift policy's learner (churn.modeling.uplift.UpliftSettings.learner).")
    parser.add_argument("--part", default="planted,homogeneous,none,aligned", help="Which parts to run (comma-separated): planted (1 and 4), homogeneous (2), none (3), aligned (5).")
    args = parser.parse_args()
    parts = set(args.part.split(","))
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    common = {"accounts": args.accounts, "cycles": args.cycles, "capacity": args.capacity, "explore_share": args.explore_share, "retrain_every": args.retrain_every, "learner": args.learner}
    started = time.monotonic()

    if "planted" in parts:
        planted_part(seeds, common, args)
    if "homogeneous" in parts:
        homogeneous_part(seeds, common)
    if "none" in parts:
        no_effect_part(seeds, common)
    if "aligned" in parts:
        aligned_part(seeds, common)
    print(f"Qini of the learned uplift model: done in {time.monotonic() - started:.0f} s")


def planted_part(seeds: list[int], common: dict, args: argparse.Namespace) -> None:
    print(f"1. responding business, {args.accounts:,} accounts × {args.cycles} weekly cycles, capacity {args.capacity}, explore {args.explore_share:.0%}, learner {args.learner}")
    planted, ratios = {}, []
    for s in seeds:  # printed seed by seed: a long run shows its figures as they come
        policies = ("risk", "value", "uplift", "oracle") + (("informed",) if args.informed else ())
        planted[s] = rec = simulate(SimulationConfig(policies=policies, seed=s, effect="planted", **common))  # type: ignore[arg-type]
        p = by_policy(rec)
        ratio = p["uplift"]["customers_saved"] / p["risk"]["customers_saved"] if p["risk"]["customers_saved"] > 0 else float("nan")
        ratios.append(ratio)
        print(
            f"   seed {s}: saved risk {p['risk']['customers_saved']:>5}  value {p['value']['customers_saved']:>5}  uplift {p['uplift']['customers_saved']:>5}"
            f"  (uplift/risk {ratio:.2f}×; expected saved {p['risk']['expected_saved']:.0f} / {p['value']['expected_saved']:.0f} / {p['uplift']['expected_saved']:.0f})"
            f"  revenue retained value {p['value']['revenue_retained']:>10,.0f}  uplift {p['uplift']['revenue_retained']:>10,.0f}"
            f"  calls {p['uplift']['calls']:,} vs {p['risk']['calls']:,}",
            flush=True,
        )
        o = p["oracle"]
        print(
            f"      ceiling, the oracle (planted effect × value, same capacity and reach): saved {o['customers_saved']:>5}"
            f" ({o['customers_saved'] / max(p['risk']['customers_saved'], 1):.2f}× risk; expected {o['expected_saved']:.0f})  revenue retained {o['revenue_retained']:>10,.0f}",
            flush=True,
        )
        if args.informed:
            i = p["informed"]
            print(
                f"      informed (the uplift policy told each account's planted group, effects learned from its experiment): saved {i['customers_saved']:>5}"
                f" ({i['customers_saved'] / max(p['risk']['customers_saved'], 1):.2f}× risk; expected {i['expected_saved']:.0f},"
                f" {i['expected_saved'] / max(p['risk']['expected_saved'], 1e-9):.2f}× risk's)  revenue retained {i['revenue_retained']:>10,.0f}"
                f" ({i['revenue_retained'] - p['value']['revenue_retained']:+,.0f} vs value)",
                flush=True,
            )
    total = {k: sum(by_policy(r)[k]["customers_saved"] for r in planted.values()) for k in ("risk", "value", "uplift")}
    print(f"   all seeds: uplift/risk customers saved {total['uplift'] / max(total['risk'], 1):.2f}× (goal ≥ 1.30×; per seed {', '.join(f'{r:.2f}' for r in ratios)})")
    if args.informed:
        informed = [by_policy(r)["informed"]["customers_saved"] / max(by_policy(r)["risk"]["customers_saved"], 1) for r in planted.values()]
        total_i = sum(by_policy(r)["informed"]["customers_saved"] for r in planted.values())
        print(f"   all seeds: informed/risk customers saved {total_i / max(total['risk'], 1):.2f}× (per seed {', '.join(f'{r:.2f}' for r in informed)})")
    expected = [by_policy(r)["uplift"]["expected_saved"] / max(by_policy(r)["risk"]["expected_saved"], 1e-9) for r in planted.values()]
    print(f"   expected saved (the planted effect of the calls made, without the outcomes' noise) uplift/risk per seed: {', '.join(f'{r:.2f}' for r in expected)}")
    rev = [by_policy(r)["uplift"]["revenue_retained"] - by_policy(r)["value"]["revenue_retained"] for r in planted.values()]
    print(f"   revenue retained uplift − value per seed: {', '.join(f'{x:+,.0f}' for x in rev)} (goal ≥ 0 on every seed)")

    print("4. Qini of the learned uplift model on held-out cohorts (uplift policy, planted responses)")
    for s, rec in planted.items():
        evals = {e["cycle"]: e for e in by_policy(rec)["uplift"]["evaluations"]}
        shown = [c for c in (8, 16, args.cycles) if c in evals]
        text = "; ".join(
            f"after {c}: {evals[c]['qini']:+.4f} [{evals[c]['qini_low']:+.4f}, {evals[c]['qini_high']:+.4f}] vs risk {evals[c]['qini_risk']:+.4f}"
            f" (planted effect {evals[c]['diagnostics']['qini_planted']:+.4f}), gate {'on' if evals[c]['gate_passed'] else 'off'}"
            for c in shown
        )
        print(f"   seed {s}: {text or 'no matured cohorts yet'}")
        rounds = [e["cycle"] for e in evals.values() if e.get("fit", {}).get("departure_rounds")]
        print(f"      of {len(evals)} judged fits: departures from the common shift kept at cycles {rounds or 'none'}")
        for c in shown:
            d = evals[c]["diagnostics"]
            print(
                f"      after {c}: Spearman with the planted effect: learned {d['true_effect_correlation']:+.2f}, risk score {d['risk_true_effect_correlation']:+.2f};"
                f" fitted on {d['fit_called']} called, {d['fit_control']} controls ({d['fit_control_churned']} churned),"
                f" {d['fit_explored']} explored ({d['fit_explored_churned']} churned), {d['fit_pool']} not called below the cut"
            )


def homogeneous_part(seeds: list[int], common: dict) -> None:
    print("2. homogeneous effect (every reached call shifts the churn logit by −0.6)")
    diffs, revenue, revenue_risk = [], [], []
    for s in seeds:
        h = by_policy(simulate(SimulationConfig(policies=("risk", "value", "uplift"), seed=s, effect="homogeneous", **common)))  # type: ignore[arg-type]
        diffs.append(h["uplift"]["customers_saved"] - h["risk"]["customers_saved"])
        revenue.append(h["uplift"]["revenue_retained"] - h["value"]["revenue_retained"])
        revenue_risk.append(h["uplift"]["revenue_retained"] - h["risk"]["revenue_retained"])
        print(
            f"   seed {s}: saved risk {h['risk']['customers_saved']:>5}  value {h['value']['customers_saved']:>5}  uplift {h['uplift']['customers_saved']:>5}"
            f"  revenue retained risk {h['risk']['revenue_retained']:>10,.0f}  value {h['value']['revenue_retained']:>10,.0f}  uplift {h['uplift']['revenue_retained']:>10,.0f}",
            flush=True,
        )
    mean, low, high = t_interval(diffs)
    print(f"   uplift − risk customers saved: mean {mean:+.1f}, 95 % t interval over seeds [{low:+.1f}, {high:+.1f}] (no worse: the interval reaches 0 or above)")
    mean, low, high = t_interval(revenue_risk)  # the policy's own objective (the expected value of a call) against risk's
    print(f"   uplift − risk revenue retained: mean {mean:+,.0f}, 95 % t interval over seeds [{low:+,.0f}, {high:+,.0f}]")
    mean, low, high = t_interval(revenue)
    print(f"   uplift − value revenue retained: mean {mean:+,.0f}, 95 % t interval over seeds [{low:+,.0f}, {high:+,.0f}]")


def no_effect_part(seeds: list[int], common: dict) -> None:
    print("3. plain business (calls change nothing): does the gate switch to uplift?")
    for s in seeds:
        rec = by_policy(simulate(SimulationConfig(policies=("uplift",), seed=s, effect="none", **common)))["uplift"]  # type: ignore[arg-type]
        passes = [e["cycle"] for e in rec["evaluations"] if e["gate_passed"]]
        print(f"   seed {s}: {len(rec['evaluations'])} gate evaluations, switched: {'yes, at cycles ' + str(passes) if passes else 'never'}", flush=True)


def aligned_part(seeds: list[int], common: dict) -> None:
    print("5. aligned business (risk and response agree): does the gate keep risk, and does uplift lose?")
    for s in seeds:
        p = by_policy(simulate(SimulationConfig(policies=("risk", "value", "uplift"), seed=s, effect="aligned", **common)))  # type: ignore[arg-type]
        passes = [e["cycle"] for e in p["uplift"]["evaluations"] if e["gate_passed"]]
        print(
            f"   seed {s}: saved risk {p['risk']['customers_saved']:>5}  value {p['value']['customers_saved']:>5}  uplift {p['uplift']['customers_saved']:>5}"
            f"  revenue value {p['value']['revenue_retained']:>10,.0f}  uplift {p['uplift']['revenue_retained']:>10,.0f}"
            f"  gate switched: {'yes, at cycles ' + str(passes) if passes else 'never'}",
            flush=True,
        )


if __name__ == "__main__":
    main()
