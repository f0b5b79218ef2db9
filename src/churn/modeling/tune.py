"""Optional hyperparameter search for LightGBM (``churn train --tune N``), with Optuna.

Tuning is nested inside the evaluation: each evaluation fold tunes on its own training rows
only, and the deployed model tunes on all rows. The search itself validates on a purged
time split of the rows it is given (the latest cutoff, trained on cutoffs matured by it) —
or, for one cutoff, on the procedure's k account folds (every row held out once) — so it
never sees an evaluation test slice. Each trial fits with early stopping and is scored by
validation log loss (a proper score: it rewards ranking and calibration together, and is
far less noisy than precision at a capacity), averaged over the folds.
"""

from __future__ import annotations

from dataclasses import replace

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import log_loss

from churn.config import TrainConfig
from churn.features.labels import LABEL
from churn.modeling.model import lightgbm_params, model_columns
from churn.modeling.splits import AccountFolds, PurgedTimeSplit


def _validation(rows: pd.DataFrame, horizon_days: int, config: TrainConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    if rows["as_of"].nunique() > 1:
        folds = PurgedTimeSplit(horizon_days, 1).folds(rows)
        if folds:
            return [(folds[0].train, folds[0].test)]
    # one cutoff: the procedure's own account folds, scored together — one 20 % holdout of a
    # snapshot has too few churners to tell settings apart, and the search then chases noise
    return [(f.train, f.test) for f in AccountFolds(n_splits=config.calibration_folds, seed=config.seed).folds(rows)]


def tune(rows: pd.DataFrame, *, horizon_days: int, config: TrainConfig, n_trials: int, seconds: float) -> tuple[TrainConfig, pd.DataFrame]:
    """Search LightGBM settings on ``rows``; returns the best settings and every trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = rows.reset_index(drop=True)
    columns = model_columns(rows)
    splits = _validation(rows, horizon_days, config)
    x, y = rows[columns], rows[LABEL].to_numpy()
    if any(min(y[v].sum(), len(v) - y[v].sum()) < 1 for _, v in splits):
        return config, pd.DataFrame()
    fit_idx = splits[0][0]

    def candidate(trial: "optuna.Trial") -> TrainConfig:
        leaf = trial.suggest_int("min_child_samples", 5, 300, log=True)
        return replace(
            config,
            num_leaves=trial.suggest_int("num_leaves", 7, 127, log=True),
            min_child_samples_bounds=(leaf, leaf),
            learning_rate=trial.suggest_float("learning_rate", 0.01, 0.15, log=True),
            colsample_bytree=trial.suggest_float("colsample_bytree", 0.3, 1.0),
            subsample=trial.suggest_float("subsample", 0.5, 1.0),
            cat_smooth=trial.suggest_float("cat_smooth", 1.0, 100.0, log=True),
            reg_lambda=trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        )

    def objective(trial: "optuna.Trial") -> float:
        settings = candidate(trial)
        losses, iterations = [], []
        for fit_idx, val_idx in splits:
            model = lgb.LGBMClassifier(n_estimators=settings.n_estimators, **lightgbm_params(settings, len(fit_idx)))  # type: ignore[arg-type]
            model.fit(
                x.iloc[fit_idx], y[fit_idx], eval_X=(x.iloc[val_idx],), eval_y=(y[val_idx],), eval_metric="binary_logloss",
                callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
            )
            iterations.append(int(model.best_iteration_ or settings.n_estimators))
            losses.append(log_loss(y[val_idx], model.predict_proba(x.iloc[val_idx])[:, 1], labels=[0, 1]))
        trial.set_user_attr("best_iteration", round(float(np.mean(iterations))))
        return float(np.mean(losses))

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=config.seed))
    study.enqueue_trial(  # the defaults are trial 0: tuning can only improve on them
        {
            "min_child_samples": config.min_child_samples(len(fit_idx)),
            "num_leaves": config.num_leaves,
            "learning_rate": config.learning_rate,
            "colsample_bytree": config.colsample_bytree,
            "subsample": config.subsample,
            "cat_smooth": config.cat_smooth,
            "reg_lambda": max(config.reg_lambda, 1e-3),
        }
    )
    study.optimize(objective, n_trials=n_trials, timeout=max(seconds, 1.0))
    trials = study.trials_dataframe(attrs=("number", "value", "params", "user_attrs", "duration"))
    best = candidate(optuna.trial.FixedTrial(study.best_params))
    return best, trials
