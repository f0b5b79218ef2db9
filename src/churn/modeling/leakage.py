"""Leakage sentinels: the checks that stop a training run before a model learns the answer.

Two of them. Each feature alone against the labels (a single feature that separates churners
almost perfectly is a leak until shown otherwise), and each attribute declared static against
who has churned by the export date (a status column rewritten when an account left)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churn.config import ChurnDefinition, TrainConfig
from churn.data.population import is_customer
from churn.features.labels import LABEL


class LeakageError(ValueError):
    """A single feature separates the labels almost perfectly: probably the future leaking in."""


def single_feature_auc(table: pd.DataFrame, columns: list[str], *, max_rows: int = 200_000, seed: int = 7) -> pd.DataFrame:
    """ROC-AUC of each feature on its own (max of AUC and 1 − AUC), highest first.

    Categories score by their churn rate; missing values are their own level."""
    rows = table if len(table) <= max_rows else table.sample(max_rows, random_state=seed)
    y = rows[LABEL].to_numpy()
    out = []
    for col in columns:
        values = rows[col]
        if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(values.dtype):
            key = values.astype("str").fillna("(missing)")
            score = key.map(pd.Series(y, index=rows.index).groupby(key).mean()).to_numpy(dtype=float)
        else:
            v = values.to_numpy(dtype=float)
            score = np.where(np.isnan(v), np.nanmin(v) - 1 if np.isfinite(v).any() else 0.0, v)
        auc = roc_auc_score(y, score) if 0 < y.sum() < len(y) else 0.5
        out.append({"feature": col, "auc": float(max(auc, 1 - auc))})
    return pd.DataFrame(out, columns=["feature", "auc"]).sort_values("auc", ascending=False, kind="stable").reset_index(drop=True)


def check_leakage(table: pd.DataFrame, columns: list[str], config: TrainConfig) -> pd.DataFrame:
    """Stop (``LeakageError``) when one feature alone separates the labels almost perfectly.

    A real churn driver does not do that; a column from the future does (a ``status`` of
    "cancelled", a date of the last invoice, a count that includes the churn month)."""
    aucs = single_feature_auc(table, columns, seed=config.seed)
    named, allow = _beyond_the_limit(aucs, config, " on its own")
    if named:
        raise LeakageError(
            f"leakage suspected: {named} separates churners almost perfectly by itself. A column like that usually "
            f"knows the future (a status or date exported after the churn). Check where it comes from; {allow}"
        )
    return aucs


def _beyond_the_limit(aucs: pd.DataFrame, config: TrainConfig, note: str = "") -> tuple[str, str]:
    """The features at or above the sentinel's ROC-AUC (not allowed by the user), named with
    their ROC-AUC, and how to let them through; ("", "") when there are none."""
    leaky = aucs[(aucs["auc"] >= config.leakage_auc) & ~aucs["feature"].isin(config.allow_features)]
    if leaky.empty:
        return "", ""
    named = ", ".join(f"{r.feature} (ROC-AUC {r.auc:.3f}{note})" for r in leaky.itertuples())
    return named, "if it is legitimate, allow it with --allow-feature " + ",".join(leaky["feature"])


def check_static_attributes_at_export(
    accounts: pd.DataFrame,
    interactions: pd.DataFrame,
    names: list[str],
    definition: ChurnDefinition,
    *,
    export_date: pd.Timestamp,
    first_cutoff: pd.Timestamp,
    config: TrainConfig,
) -> pd.DataFrame:
    """:func:`check_static_attributes` on the accounts the training table can hold — customers
    at the first cutoff or later signups, up to ``export_date`` (when the attribute values were
    taken) — against who of them has churned by ``export_date``. Accounts gone long before the
    window are left out: an attribute that tracks the signup cohort must not trip it."""

    if not names:
        return pd.DataFrame(columns=["feature", "auc"])
    signup = accounts["signup_at"]
    in_window = (signup < export_date).to_numpy() & (is_customer(accounts, interactions, first_cutoff, definition) | (signup >= first_cutoff).to_numpy())
    gone = ~is_customer(accounts, interactions, export_date, definition)
    return check_static_attributes(accounts[in_window], gone[in_window], names, config)


def check_static_attributes(accounts: pd.DataFrame, gone: np.ndarray, names: list[str], config: TrainConfig) -> pd.DataFrame:
    """Stop (``LeakageError``) when an attribute declared static separates the accounts gone
    by the export date from the others almost perfectly.

    A static value never changes after signup, so it cannot know who leaves later. One that
    does was written at or after the churn — a ``status`` of "cancelled" — and, used at every
    past cutoff, tells the model the future. The training sentinel may miss it: at a cutoff
    it also marks accounts that churn after the horizon, which blurs it below the limit."""
    columns = [n for n in names if n in accounts.columns]
    if not columns or gone.all() or not gone.any():
        return pd.DataFrame(columns=["feature", "auc"])
    aucs = single_feature_auc(accounts[columns].assign(**{LABEL: gone.astype("int8")}), columns, seed=config.seed)
    named, allow = _beyond_the_limit(aucs, config)
    if named:
        raise LeakageError(
            f"leakage suspected: {named}, declared static, separates the accounts that have churned by the export date "
            "from the others almost perfectly. A value that never changes after signup cannot know that; this one was "
            f"likely written at the churn (a status). Take it out of static_attributes or give its attribute_history; {allow}"
        )
    return aucs
