"""Benchmark batch scoring at 1,000,000 accounts.

    python benchmarks/score.py                 # 1M accounts, the default model settings
    python benchmarks/score.py --rows 200000

A model is trained on generated data (``--accounts``, default 20,000); its test-slice feature rows are
resampled to ``--rows`` accounts (features are per account, so this is the same work as
scoring that many real accounts). Prints seconds and peak RSS for:

1. probabilities + bands + revenue at risk + ranking + outreach/control;
2. exact TreeSHAP reasons for the accounts people act on, bounded (``--exact`` rows);
3. the full risk list as ``churn score`` builds it (exact reasons for the flagged and
   high-band accounts up to the bound, deviation attribution for the rest).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from churn.config import ChurnDefinition, ScoreConfig
from churn.data.dataend import observed_until
from churn.data.synthetic import generate
from churn.features.labels import LABEL, build_training_table, default_cutoffs
from churn.features.spec import FeatureSpec
from churn.modeling.train import train
from churn.outreach.reasons import exact_contributions
from churn.outreach.score import assign_outreach, build_risk_list, rank_accounts, risk_bands


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=20_000, help="accounts of the generated business the model is trained on")
    parser.add_argument("--exact", type=int, default=100_000)
    args = parser.parse_args()

    t = time.perf_counter()
    data = generate(args.accounts, months=24, seed=7)
    spec = FeatureSpec.from_data(data.accounts, data.interactions)
    cutoffs = default_cutoffs(observed_until(data.accounts, data.interactions), ChurnDefinition())
    table = build_training_table(data.accounts, data.interactions, cutoffs=cutoffs, spec=spec)
    result = train(table, spec=spec)
    model = result.model
    print(f"model: {model.metadata['best_iteration']} trees × {model.classifier.num_leaves} leaves, trained in {time.perf_counter() - t:.0f} s")

    # the feature rows of the latest evaluation slice (what the headline metrics describe)
    base = table.iloc[result.evaluation.main.fold.test].drop(columns=[LABEL]).reset_index(drop=True)
    rng = np.random.default_rng(0)
    features = base.iloc[rng.integers(0, len(base), args.rows)].reset_index(drop=True)
    features["account_id"] = [f"B{i:08d}" for i in range(args.rows)]
    del data, table
    config = ScoreConfig(capacity=5_000, max_exact_reasons=args.exact)
    print(f"scoring {args.rows:,} accounts × {len(model.feature_names)} features (peak RSS so far {peak_gib():.2f} GiB)")

    t = time.perf_counter()
    p = model.predict_proba(features)
    frame = pd.DataFrame({"account_id": features["account_id"], "churn_probability": p})
    frame["risk_band"] = risk_bands(p, config)
    frame["revenue_at_risk"] = p * 12 * features["mrr"].to_numpy()
    frame["rank"] = rank_accounts(frame, config)
    frame = frame.join(assign_outreach(frame.assign(as_of=pd.Timestamp("2024-12-01", tz="UTC")), config))
    t_prob = time.perf_counter() - t
    print(f"1. probabilities + bands + ranking + outreach   {t_prob:6.1f} s   ({args.rows / t_prob:,.0f} accounts/s)")

    t = time.perf_counter()
    prepared = model.prepare(features.iloc[: args.exact])
    contrib = exact_contributions(model, prepared, config.reason_chunk_rows)
    t_exact = time.perf_counter() - t
    print(f"2. exact TreeSHAP reasons, {args.exact:,} accounts      {t_exact:6.1f} s   ({t_exact / args.exact * 1e3:.2f} ms/account; {t_exact / t_prob * args.rows / args.exact:.0f}× a prediction)")
    del contrib

    t = time.perf_counter()
    risk, notes = build_risk_list(features, model, config=config)
    t_full = time.perf_counter() - t
    print(f"3. full risk list (as churn score builds it)    {t_full:6.1f} s   ({notes['exact_reasons']:,} exact, {notes['cheap_reasons']:,} deviation)")
    print(f"peak RSS                                        {peak_gib():6.2f} GiB")


if __name__ == "__main__":
    main()
