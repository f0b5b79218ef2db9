"""Whom to call: can the product's own features tell the planted response groups apart at all?

A diagnostic for the uplift learners (issue "whom to call"), on the simulation's responding
business: an upper bound for any learner that works from features. It uses the planted truth —
analysis only, never the product. At a few of the simulation's weekly dates (built as
``churn simulate`` builds them: the warm-up churn model, the features of the accounts alive in
the plain business, each account's planted group of that month):

1. **Identifiability**: a LightGBM multiclass classifier of the planted group from the churn
   model's feature columns, 5-fold cross-validation grouped by account — accuracy and macro F1
   against always guessing the largest group, and the AUC of the pairs a learner must split
   (callback vs fed up, offer vs lost cause; sleeping dogs vs the other quiet accounts is at
   chance by design: they are drawn at random).
2. **Worth**: the top ``--top`` accounts per date ranked by risk, by risk × value, by the
   classifier's expected planted cut in churn (Σ p(group | x) × the cut of that group's shift,
   with the churn model's probability as the hazard — what a learner has), alone and × value,
   and by the true group (what the informed policy is told): the mean planted cut and value
   saved per account, each against risk's and value's. A snapshot on the plain business, not the
   closed loop (no controls, exploration, re-calls): the ratios are larger than a simulation's.

    python benchmarks/uplift_groups.py                    # 20,000 accounts, seed 11, 6 dates, top 300
    python benchmarks/uplift_groups.py --accounts 600 --dates 2 --top 20 --folds 2   # toy size
"""

from __future__ import annotations

import argparse
import time

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.model_selection import GroupKFold

from churn.data.responding import RESPONSE_SHIFT, call_cut
from churn.jobs.simulate import SimulationConfig, _prepare
from churn.modeling.uplift import feature_columns

GROUPS = list(RESPONSE_SHIFT)


def snapshot(accounts: int, seed: int, dates: int) -> pd.DataFrame:
    """The features of the accounts alive in the plain business at ``dates`` weekly cycles
    spread over 26, with the planted group (``_group``), hazard, the account's annual value and
    the warm-up churn model's probability — taken from ``churn simulate``'s own preparation, so
    the groups, hazards and values are the simulation's (it builds all 26 cycles' features)."""
    shared = _prepare(SimulationConfig(accounts=accounts, seed=seed))
    parts = []
    for c in np.unique(np.linspace(0, len(shared.dates) - 1, dates).round().astype(int)):
        alive = shared.plain_churn[shared.index[c]] > shared.dates[c].value
        f = shared.features[c][alive].reset_index(drop=True)
        extra = {"_cycle": c, "_group": shared.group[c][alive], "_hazard": shared.hazard[c][alive], "_value": shared.value[shared.index[c][alive]]}
        parts.append(f.assign(**extra, _p_model=shared.model.predict_proba(f)))
    return pd.concat(parts, ignore_index=True)


def group_probabilities(table: pd.DataFrame, folds: int) -> np.ndarray:
    """P(group | features), out of fold (folds grouped by account: no account in both)."""
    x, y = table[feature_columns(table)], pd.Categorical(table["_group"], categories=GROUPS).codes
    p = np.zeros((len(table), len(GROUPS)))
    for k, (fit, out) in enumerate(GroupKFold(n_splits=folds).split(x, y, table["account_id"].astype("str"))):
        m = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=31, min_child_samples=40, subsample=0.8, subsample_freq=1, colsample_bytree=0.8, n_jobs=1, verbose=-1, random_state=k)
        m.fit(x.iloc[fit], y[fit])
        p[np.ix_(out, m.classes_)] = m.predict_proba(x.iloc[out])
    return p


def identifiability(table: pd.DataFrame, p: np.ndarray) -> None:
    y = pd.Categorical(table["_group"], categories=GROUPS).codes
    largest = np.bincount(y).argmax()
    print(f"1. identifiability ({len(table):,} account-dates): accuracy {(p.argmax(1) == y).mean():.3f} (always {GROUPS[largest]}: {(y == largest).mean():.3f}), "
          f"macro F1 {f1_score(y, p.argmax(1), average='macro'):.3f} (always {GROUPS[largest]}: {f1_score(y, np.full_like(y, largest), average='macro'):.3f})")
    for a, b in ((["callback"], ["fed_up"]), (["offer"], ["lost_cause"]), (["sleeping_dog"], ["content", "context"])):
        ia, ib = [GROUPS.index(g) for g in a], [GROUPS.index(g) for g in b]
        rows = np.isin(y, ia + ib)
        is_a = np.isin(y[rows], ia)
        if is_a.all() or not is_a.any():
            print(f"   {'+'.join(a)} vs {'+'.join(b)}: not both present")
            continue
        pa, pb = p[rows][:, ia].sum(1), p[rows][:, ib].sum(1)
        print(f"   {'+'.join(a)} vs {'+'.join(b)}: AUC {roc_auc_score(is_a, pa / (pa + pb + 1e-12)):.3f} ({is_a.sum():,} / {(~is_a).sum():,})")


def worth(table: pd.DataFrame, p: np.ndarray, top: int, config: SimulationConfig = SimulationConfig()) -> None:
    """The planted cut and value saved per account in each ranking's top ``top`` per date (the
    simulation's reach rate and horizon)."""
    reach = config.reach_rate
    cut = lambda h, shift: reach * call_cut(h, shift, config.horizon_days)  # noqa: E731
    shift = table["_group"].map(RESPONSE_SHIFT).to_numpy(float)
    truth, value, model_h = cut(table["_hazard"].to_numpy(float), shift), table["_value"].to_numpy(float), np.clip(table["_p_model"].to_numpy(float), 1e-6, 1 - 1e-6)
    expected = sum(p[:, j] * cut(model_h, RESPONSE_SHIFT[g]) for j, g in enumerate(GROUPS))
    told = cut(model_h, shift)
    rankings = {"risk": model_h, "value (risk × value)": model_h * value, "classifier's expected cut": expected,
                "classifier's expected cut × value": expected * value, "true group (informed)": told, "true group × value": told * value}
    cycles = table["_cycle"].to_numpy()
    rows = {}
    for name, score in rankings.items():
        picked = [m[np.argsort(-score[m], kind="stable")[:top]] for m in (np.flatnonzero(cycles == c) for c in np.unique(cycles))]
        rows[name] = (np.mean([truth[i].mean() for i in picked]), np.mean([(truth[i] * value[i]).mean() for i in picked]))
    risk, by_value = rows["risk"][0], rows["value (risk × value)"][1]
    print(f"2. worth: top {top} per date, planted cut in 30-day churn of a call (reach {reach:.0%}) and value saved, per account")
    for name, (c, v) in rows.items():
        print(f"   {name:36s} cut {c:.4f} ({c / risk:.2f}× risk)   value {v:8.2f} ({v / by_value:.2f}× value)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--dates", type=int, default=6, help="weekly cycles looked at, spread over 26")
    parser.add_argument("--top", type=int, default=300, help="accounts called per date (the capacity)")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    started = time.process_time()
    table = snapshot(args.accounts, args.seed, args.dates)
    p = group_probabilities(table, args.folds)
    identifiability(table, p)
    worth(table, p, args.top)
    print(f"CPU {time.process_time() - started:.0f} s")


if __name__ == "__main__":
    main()
