"""Time to churn: the hazard model against Cox and Kaplan–Meier on three generated businesses.

    python benchmarks/survival.py                   # 3 seeds × 4,000 accounts × 36 months
    python benchmarks/survival.py --seeds 1 --accounts 300 --months 20
    python benchmarks/survival.py --first-seed 100  # three other businesses
    python benchmarks/survival.py --split time      # a later time slice instead of account folds

Each business runs 36 months; the cutoffs are every second month start from month 12 to the
latest mature one, so the earliest have two years of follow-up and the latest a few weeks (the
rest is censored at the end of the data). Every row's curve comes from models that never saw
its account (3 account folds, :func:`churn.modeling.survival.evaluate_survival`): the hazard
model, Cox on the numeric features and Kaplan–Meier per segment. Printed per seed and on
average: Uno's C-index (τ = 12 months), the integrated Brier score over months 1–12 and the
mean per-decile gap between predicted and Kaplan–Meier survival at 3 and 12 months, with the
goals: C-index ≥ Cox + 0.02, IBS below Kaplan–Meier's, 12-month calibration within 2 points.
Next to the 12-month gap, its noise floor: the mean gap a perfectly calibrated model would show,
from the standard error of each decile's observed survival (account bootstrap: an account's rows
at 12 cutoffs share one lapse date, so they are far from 12 independent rows), and the chance
that a perfectly calibrated model would show gaps this large (χ² of gap / standard error).

With ``--split time``, also whether the slice's gap is the model's or the world's: per decile of
the generator's planted hazard at each row's cutoff (ground truth the product never sees), the
model's 12-month survival and the observed one on the test cutoff, a Kaplan–Meier of the
training cutoffs' rows in the same decile (the past, as the model saw it), and the planted
12-month survival in the training period (months before the test cutoff) and after the test
cutoff. If the past's own Kaplan–Meier misses by as much as the model, and the planted survival
moved between the periods, the gap is drift in the generated world, not a fault of the model.
And per decile of the model's own 12-month survival, the planted truth's gap to the observed
(the calibration a perfect model would score on these very rows: the floor) and the model's
distance to the truth (its error without the test side's noise).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import stats

from churn.config import ChurnDefinition, TrainConfig
from churn.data.dataend import observed_until
from churn.data.synthetic import generate
from churn.features.labels import build_training_table
from churn.features.spec import FeatureSpec
from churn.modeling.model import model_columns
from churn.modeling.survival import censor_at, evaluate_survival, feature_matrix, time_slice, time_to_lapse
from churn.modeling.survival_metrics import kaplan_meier


def one_business(seed: int, accounts: int, months: int, step: int, threads: int, split: str) -> pd.DataFrame:
    data = generate(accounts, start="2022-01-01", months=months, seed=seed)
    end = observed_until(data.accounts, data.interactions)
    definition = ChurnDefinition().resolved(data.accounts)
    first = pd.Timestamp("2022-01-01", tz="UTC") + pd.DateOffset(months=min(12, months // 2))
    cutoffs = list(pd.date_range(first, end - definition.horizon, freq=f"{step}MS"))
    spec = FeatureSpec.from_data(data.accounts, data.interactions, history=data.attribute_history, before=max(cutoffs))
    table = build_training_table(data.accounts, data.interactions, cutoffs=cutoffs, spec=spec, history=data.attribute_history, definition=definition, data_end=end)
    outcome = time_to_lapse(data.accounts, data.interactions, table, definition, end)
    x, categorical = feature_matrix(table, model_columns(table))
    segments = table["segment"].astype("str").to_numpy() if "segment" in table.columns else None
    result = evaluate_survival(
        x, outcome["months"].to_numpy(), outcome["event"].to_numpy(), table["account_id"].to_numpy(), segments,
        categorical=categorical, config=TrainConfig(n_jobs=threads), follow_up=outcome["follow_up"].to_numpy(),
        as_of=table["as_of"].to_numpy() if split == "time" else None,
    )  # fmt: skip
    print(f"\nseed {seed}: {len(cutoffs)} cutoffs, {result.description}")
    print(result.metrics.round(4).to_string())
    print("12-month survival per decile (hazard model):")
    deciles = result.deciles["12m"]
    print(deciles.round(3).to_string(index=False))
    chi2 = float(((deciles["gap"] / deciles["se"]) ** 2).sum())
    out = result.metrics.assign(seed=seed, noise_p=stats.chi2.sf(chi2, len(deciles)))
    if split == "time" and result.curves is not None:
        return out.assign(**world_drift(data.causes, table, outcome, result.curves))
    return out


def _s12(hazard: np.ndarray) -> float:
    """12-month survival from the mean planted hazard of the rows still customers each month."""
    with np.errstate(invalid="ignore"):
        return float(np.prod(1.0 - np.nanmean(hazard, axis=0)))


DRIFT_COLUMNS = ["gap_model", "gap_past_km", "planted_shift", "planted_lower_then", "overall_past_km", "overall_observed", "gap_truth", "model_vs_truth", "model_minus_truth"]


def truth_floor(hazard: np.ndarray, months: np.ndarray, event: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The calibration measure the planted truth itself scores on the test rows: per decile of
    the model's 12-month survival (as the calibration table), the planted survival (1 − mean
    planted hazard of the rows still customers, month by month) against the observed one. No
    model can expect a smaller gap on these rows, and the model's distance to the truth is its
    error without the test side's noise (what is left is the training side's noise, drift or a
    fault: the account-bootstrap floor counts only the test side)."""
    decile = pd.qcut(pd.Series(predicted).rank(method="first"), 10, labels=False).to_numpy()
    t = pd.DataFrame([
        {"decile": d + 1, "model": float(predicted[decile == d].mean()), "planted": _s12(hazard[decile == d]),
         "observed": float(kaplan_meier(months[decile == d], event[decile == d], np.array([12.0]))[0])}
        for d in range(10)
    ])  # fmt: skip
    floor = {
        "gap_truth": float((t["planted"] - t["observed"]).abs().mean()),
        "model_vs_truth": float((t["model"] - t["planted"]).abs().mean()),
        "model_minus_truth": float((t["model"] - t["planted"]).mean()),
    }
    print("12-month survival per decile of the model (as the calibration table) with the planted truth:")
    print(t.round(3).to_string(index=False))
    print(f"mean gap to the observed: model {float((t['model'] - t['observed']).abs().mean()):.4f}, planted truth {floor['gap_truth']:.4f} (the floor on these rows); "
          f"model − planted truth: {floor['model_vs_truth']:.4f} mean gap, {floor['model_minus_truth']:+.4f} on average")  # fmt: skip
    return floor


def world_drift(causes: pd.DataFrame, table: pd.DataFrame, outcome: pd.DataFrame, curves: np.ndarray) -> dict[str, float]:
    """The time slice's 12-month calibration against what the past could have taught: per decile
    of the planted hazard at the cutoff, the model, the observed survival, a Kaplan–Meier of the
    training rows (outcomes censored at the test cutoff) and the planted survival then and now."""
    months, event, follow = (outcome[c].to_numpy(dtype=float) for c in ("months", "event", "follow_up"))
    as_of = pd.Series(pd.to_datetime(table["as_of"].to_numpy(), utc=True))
    known = np.isfinite(months)
    cutoff = time_slice(as_of[known].to_numpy(), follow[known])
    if cutoff is None:  # evaluated on account folds
        return {}
    train, test = known & (as_of < cutoff).to_numpy(), known & (as_of == cutoff).to_numpy()
    m, e, _ = censor_at(months[train], event[train].astype(bool), as_of[train].to_numpy(), cutoff)
    planted = causes.set_index([causes["account_id"].astype("str"), "month_start"])["hazard"]
    ids = table["account_id"].astype("str").to_numpy()
    starts = [as_of + pd.DateOffset(months=k) for k in range(13)]
    hazard = np.column_stack([planted.reindex(pd.MultiIndex.from_arrays([ids, starts[k]])).to_numpy() for k in range(12)])
    seen = np.column_stack([(starts[k + 1] <= cutoff).to_numpy() for k in range(12)])  # months the training saw
    risk = hazard[:, 0]
    rows = []
    for part in (train & np.isfinite(risk), test & np.isfinite(risk)):
        ranked = pd.Series(-risk[part]).rank(method="first")  # decile 1: the riskiest, as in the model's table
        decile = np.full(len(risk), -1)
        decile[np.flatnonzero(part)] = pd.qcut(ranked, 10, labels=False).to_numpy()
        rows.append(decile)
    table_rows = []
    for d in range(10):
        tr, te = rows[0] == d, rows[1] == d
        table_rows.append({
            "decile": d + 1, "test_rows": int(te.sum()), "model": float(np.nanmean(curves[te, 11])),
            "observed": float(kaplan_meier(months[te], event[te].astype(bool), np.array([12.0]))[0]),
            "past_km": float(kaplan_meier(m[tr[train]], e[tr[train]], np.array([12.0]))[0]),
            "planted_then": _s12(np.where(seen[tr], hazard[tr], np.nan)), "planted_now": _s12(hazard[te]),
        })  # fmt: skip
    t = pd.DataFrame(table_rows)
    print(f"Is the gap the world's? 12-month survival per decile of the planted hazard at the cutoff (ground truth), test cutoff {cutoff:%Y-%m-%d}:")
    print(t.round(3).to_string(index=False))
    drift = {
        "gap_model": float((t["model"] - t["observed"]).abs().mean()),
        "gap_past_km": float((t["past_km"] - t["observed"]).abs().mean()),
        "planted_shift": float((t["planted_then"] - t["planted_now"]).abs().mean()),
        "planted_lower_then": int((t["planted_then"] < t["planted_now"]).sum()),
        "overall_past_km": float(kaplan_meier(m, e, np.array([12.0]))[0]),
        "overall_observed": float(kaplan_meier(months[test], event[test].astype(bool), np.array([12.0]))[0]),
    }
    tested = test & np.isfinite(curves[:, 11])
    drift |= truth_floor(hazard[tested], months[tested], event[tested].astype(bool), curves[tested, 11])
    print(
        f"mean gap to the observed, per planted decile: model {drift['gap_model']:.4f}, Kaplan–Meier of the training cutoffs {drift['gap_past_km']:.4f}; "
        f"planted survival, training period vs after the test cutoff: {drift['planted_shift']:.4f} apart (lower then in {drift['planted_lower_then']} of 10); "
        f"all rows: past Kaplan–Meier {drift['overall_past_km']:.3f}, observed {drift['overall_observed']:.3f}"
    )
    return drift


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="businesses are seeds first-seed … first-seed + seeds − 1 (another range: businesses not looked at while developing)")
    parser.add_argument("--accounts", type=int, default=4_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--step", type=int, default=2, help="months between cutoffs")
    parser.add_argument(
        "--split", choices=["accounts", "time"], default="accounts",
        help="accounts: 3 account folds over all cutoffs; time: train on the cutoffs before the latest one followed for 12 months (outcomes censored at it), test on it (churn train --survival's evaluation when the data allow it)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="LightGBM threads (1: the machine is shared)")
    args = parser.parse_args()
    start = time.perf_counter()
    frames = [one_business(seed, args.accounts, args.months, args.step, args.threads, args.split) for seed in range(args.first_seed, args.first_seed + args.seeds)]
    allm = pd.concat(frames)
    mean = allm.groupby(level=0).mean(numeric_only=True).drop(columns=["seed", "noise_p", *DRIFT_COLUMNS], errors="ignore")
    print(f"\nmean over {args.seeds} seed(s):")
    print(mean.round(4).to_string())
    per_seed = allm.reset_index(names="model").pivot(index="seed", columns="model")
    c_gain = per_seed["c_index"]["model"] - per_seed["c_index"]["cox"]
    ibs_gain = per_seed["ibs"]["kaplan_meier"] - per_seed["ibs"]["model"]
    cal, noise = per_seed["calibration_12m"]["model"], per_seed["calibration_12m_noise"]["model"]
    pvalues = per_seed["noise_p"]["model"]
    print("\ngoals, per seed:")
    print(f"C-index − Cox (goal ≥ +0.02):        {' '.join(f'{v:+.4f}' for v in c_gain)}   met on {int((c_gain >= 0.02).sum())} of {len(c_gain)}")
    print(f"IBS: Kaplan–Meier − model (goal > 0): {' '.join(f'{v:+.4f}' for v in ibs_gain)}   met on {int((ibs_gain > 0).sum())} of {len(ibs_gain)}")
    print(f"12-month calibration gap (goal ≤ 0.02): {' '.join(f'{v:.4f}' for v in cal)}   met on {int((cal <= 0.02).sum())} of {len(cal)}")
    print(f"  its noise floor (a perfect model's gap): {' '.join(f'{v:.4f}' for v in noise)}")
    print(f"  chance of gaps this large from noise alone (χ², 10 deciles): {' '.join(f'{v:.2f}' for v in pvalues)}")
    if "gap_past_km" in per_seed:
        print("is a time slice's gap the world's? (per decile of the planted hazard at the cutoff)")
        print(f"  model − observed:                          {' '.join(f'{v:.4f}' for v in per_seed['gap_model']['model'])}")
        print(f"  past Kaplan–Meier − observed:              {' '.join(f'{v:.4f}' for v in per_seed['gap_past_km']['model'])}")
        print(f"  planted survival, training period − now:   {' '.join(f'{v:.4f}' for v in per_seed['planted_shift']['model'])}   lower then in {' / '.join(str(int(v)) for v in per_seed['planted_lower_then']['model'])} of 10 deciles")
        print(f"  all rows, past Kaplan–Meier − observed:    {' '.join(f'{v:+.4f}' for v in per_seed['overall_past_km']['model'] - per_seed['overall_observed']['model'])}")
        print("per decile of the model, against the planted truth (ground truth the product never sees)")
        print(f"  planted truth − observed (the floor):      {' '.join(f'{v:.4f}' for v in per_seed['gap_truth']['model'])}")
        print(f"  model − planted truth, mean gap:           {' '.join(f'{v:.4f}' for v in per_seed['model_vs_truth']['model'])}")
        print(f"  model − planted truth, on average:         {' '.join(f'{v:+.4f}' for v in per_seed['model_minus_truth']['model'])}")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
