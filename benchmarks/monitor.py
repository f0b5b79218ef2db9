"""Benchmark: what monitoring adds to a 1,000,000-account scoring run.

    python benchmarks/monitor.py                        # 1M accounts, 3 repeats
    python benchmarks/monitor.py --rows 200000 --repeats 5

As in benchmarks/score.py, a model is trained on generated data (20,000 accounts) and its
test-slice feature rows are resampled to ``--rows`` accounts; the reference profile is
built from the test slice, as training stores it. Monitoring then gets everything a weekly
run hands it, at full size — the worst case, where nothing can be reused:

* the previous run of the same accounts (risk jumps, reasons that changed);
* an earlier list of ``--rows`` accounts whose horizon has just passed (realized
  performance: labels for every account, ROC-AUC, PR-AUC, calibration);
* the events of the monitoring window (the generated business's last 91 days, replicated
  to ``--rows`` accounts) for volume, missing values, unseen categories and freshness. A
  real run holds a year of events; monitoring slices this window out of it in one pass.

Prints the median over ``--repeats`` of: scoring (risk list with reasons, history written
— what ``churn score`` does after the features), monitoring (``monitor_run``: drift, data
quality, realized performance, alerts, verdict, monitoring.json and alerts.csv written),
and monitoring as a share of scoring. Loading and features, which scoring also pays and
monitoring does not, are left out, so the share is an upper bound.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from churn.config import ChurnDefinition, ScoreConfig
from churn.data.dataend import observed_until
from churn.data.synthetic import generate
from churn.features.labels import LABEL, build_training_table, default_cutoffs
from churn.features.spec import FeatureSpec
from churn.jobs.weekly import score_run  # noqa: F401 — loaded by `churn score` before monitoring runs
from churn.modeling.train import train
from churn.monitoring.run import monitor_run
from churn.monitoring.settings import MonitorConfig
from churn.outreach.runs import run_dir, write_run
from churn.outreach.score import build_risk_list, risk_bands


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=20_000, help="accounts of the generated business the model is trained on")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    t = time.perf_counter()
    data = generate(args.accounts, months=24, seed=7)
    spec = FeatureSpec.from_data(data.accounts, data.interactions)
    definition = ChurnDefinition()
    cutoffs = default_cutoffs(observed_until(data.accounts, data.interactions), definition)
    table = build_training_table(data.accounts, data.interactions, cutoffs=cutoffs, spec=spec)
    result = train(table, spec=spec)
    model = result.model
    assert model.metadata.get("monitoring_reference"), "train() stores the reference profile with the model"
    print(f"model: {model.metadata['best_iteration']} trees, trained in {time.perf_counter() - t:.0f} s")

    # --rows accounts: test-slice rows resampled, each with its source account's attributes
    test = table.iloc[result.evaluation.main.fold.test].reset_index(drop=True)  # the latest evaluation slice
    as_of = test["as_of"].iloc[0]
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(test), args.rows)
    ids = np.array([f"B{i:08d}" for i in range(args.rows)])
    features = test.drop(columns=[LABEL]).iloc[pick].reset_index(drop=True).assign(account_id=ids)
    source = data.accounts.set_index("account_id").loc[test["account_id"].to_numpy()[pick]].reset_index(drop=True)
    accounts = source.assign(account_id=ids)[["account_id", *source.columns]]
    days = MonitorConfig().window_days
    window = data.interactions[(data.interactions["occurred_at"] < as_of) & (data.interactions["occurred_at"] >= as_of - pd.Timedelta(days=days))]
    copies = max(1, round(args.rows / len(test)))
    interactions = pd.concat([window] * copies, ignore_index=True)
    del table, data
    config = ScoreConfig(capacity=5_000)
    print(f"{args.rows:,} accounts × {len(model.feature_names)} features; {len(interactions):,} events in the {days}-day window; as of {as_of:%Y-%m-%d}")

    # an earlier run of the same accounts a horizon ago (matured now) and the run before this one
    earlier, _ = build_risk_list(features, model, config=config, accounts=accounts)
    earlier["churn_probability"] = np.clip(earlier["churn_probability"] * rng.lognormal(0, 0.3, args.rows), 0, 1)
    earlier["risk_band"] = risk_bands(earlier["churn_probability"].to_numpy(), config)
    shuffled = rng.random(args.rows) < 0.1
    earlier.loc[shuffled, "reason_features"] = earlier["reason_features"].sample(frac=1, random_state=1).to_numpy()[shuffled]
    previous_as_of = as_of - definition.horizon
    churn = definition.as_dict()

    scoring, monitoring = [], []
    for repeat in range(args.repeats):
        out = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
        write_run(out, earlier.assign(as_of=previous_as_of), {"run_id": "earlier", "as_of": f"{previous_as_of:%Y-%m-%d}", "scored_at": "0", "model": "bench", "churn": churn})

        t = time.perf_counter()
        risk, notes = build_risk_list(features, model, config=config, accounts=accounts, previous=earlier)
        record = {"run_id": f"now{repeat}", "as_of": f"{as_of:%Y-%m-%d}", "scored_at": "1", "model": "bench", "churn": churn, **notes}
        write_run(out, risk, record)
        scoring.append(time.perf_counter() - t)

        t = time.perf_counter()
        result_ = monitor_run(
            out, folder=run_dir(out, record["run_id"]), record=record, risk=risk, features=features, model=model, accounts=accounts, interactions=interactions,
            previous=earlier, thresholds=(config.medium_threshold, config.high_threshold),
        )  # fmt: skip
        monitoring.append(time.perf_counter() - t)
        doc = result_.document
        print(
            f"  run {repeat + 1}: scoring {scoring[-1]:5.1f} s, monitoring {monitoring[-1]:5.1f} s "
            f"(verdict {doc['verdict']}, {doc['summary']['features_checked']} features, {len(doc['data_quality'])} quality checks, "
            f"{doc['summary']['matured_runs']} matured list judged, {doc['summary']['account_alerts']:,} risk jumps)"
        )
        shutil.rmtree(out)

    s, m = statistics.median(scoring), statistics.median(monitoring)
    shares = ", ".join(f"{100 * b / a:.1f} %" for a, b in zip(scoring, monitoring))
    print(f"scoring (risk list + history), median of {args.repeats}   {s:6.1f} s")
    print(f"monitoring (monitor_run), median of {args.repeats}          {m:6.1f} s")
    print(f"monitoring adds                                 {100 * m / s:6.1f} % to scoring (target < 20 %; per run: {shares})")
    print(f"peak RSS                                        {peak_gib():6.2f} GiB")


if __name__ == "__main__":
    main()
