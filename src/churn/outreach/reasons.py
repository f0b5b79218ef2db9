"""Reasons a customer-success agent can act on, with a yardstick — and a check that they are right.

**Attribution.** Exact per-account contributions (LightGBM TreeSHAP, log-odds) for the
accounts people act on; for the long tail a cheaper score: each feature's deviation from its
training median in interquartile ranges, signed by its risk direction and weighted by the
model's gain share. Either way a reason is a feature that *raises* this account's risk and
whose value the account really has.

**Order.** Each feature belongs to a driver family (:data:`churn.config.DRIVERS`). The
*lead family* is the actionable family (support effort, usage, survey, billing) with the
largest summed contribution — a problem spread over several related features (long waits,
repeat contacts, channel switches) counts as one — and the lead reason is that family's
strongest feature. The remaining reasons follow by size, actionable before context; static
context (contract, plan, region, tenure) leads only when nothing actionable raises the risk.
Of a feature measured over several windows (30/90/365 days) only the strongest is shown.

**Yardstick.** Every sentence ends with what is typical, taken from the training reference
stored with the model (:func:`churn.modeling.train.reference_values`), never from the scored batch:
"waited 14 min on average on live channels in the last 90 days; typical: 3 min", "on a
monthly contract; true of 58% of accounts".

**Accuracy.** :func:`reason_accuracy` compares lead reasons with the planted causes of a
generated business (:attr:`churn.data.synthetic.GeneratedData.causes`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn.config import ACTIONABLE_DRIVERS, ScoreConfig
from churn.features.registry import Feature
from churn.modeling.model import ChurnModel

#: Method names in the ``reason_method`` column.
EXACT, DEVIATION, NONE = "tree_shap", "deviation", "none"


# --------------------------------------------------------------------------- attribution


def exact_contributions(model: ChurnModel, prepared: pd.DataFrame | np.ndarray, chunk_rows: int) -> np.ndarray:
    """TreeSHAP log-odds contributions for already-prepared rows (the table
    :meth:`ChurnModel.prepare` returns, or its :meth:`ChurnModel.matrix`), chunk by chunk
    (bounded memory; LightGBM spreads each chunk over all cores)."""
    matrix = model.matrix(prepared) if isinstance(prepared, pd.DataFrame) else prepared
    parts = [
        np.asarray(model.booster.predict(matrix[i : i + chunk_rows], pred_contrib=True))[:, :-1]
        for i in range(0, len(matrix), chunk_rows)
    ]
    return np.vstack(parts) if parts else np.zeros((0, len(model.feature_names)))


def gain_shares(model: ChurnModel) -> np.ndarray:
    """Each feature's share of the model's total gain, in the model's column order."""
    importance = model.importance().reindex(model.feature_names).fillna(0.0).to_numpy()
    return importance / importance.sum() if importance.sum() > 0 else importance


def deviation_scores(model: ChurnModel, x: pd.DataFrame, infos: list[Feature], weight: np.ndarray) -> np.ndarray:
    """Cheap attribution: direction × (value − training median) / spread × gain share."""
    out = np.zeros(x.shape, dtype=float)
    for j, info in enumerate(infos):
        ref = model.reference.get(info.name) or {}
        if "median" not in ref or info.direction == 0 or weight[j] == 0:
            continue
        v = pd.to_numeric(x.iloc[:, j], errors="coerce").to_numpy(dtype=float)
        out[:, j] = info.direction * (v - float(ref["median"])) / float(ref["spread"]) * weight[j]  # type: ignore[arg-type]
    return np.nan_to_num(out, nan=0.0)


# --------------------------------------------------------------------------- order


def window_groups(names: list[str]) -> list[np.ndarray]:
    """Column indices of features that are one measure over several windows
    (``repeat_contacts_30d``, ``repeat_contacts_90d``): groups of two or more."""
    bases = pd.Series([re.sub(r"_\d+d$", "", n) for n in names])
    return [np.asarray(idx) for idx in bases.groupby(bases).indices.values() if len(idx) > 1]


def order_reasons(
    scores: np.ndarray, usable: np.ndarray, drivers: list[str], k: int, groups: list[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The k reasons per row, in the order an agent reads them (see the module docstring).

    Parameters
    ----------
    scores : (n, p) contributions; above zero raises the risk.
    usable : (n, p) whether the account has a value for the feature.
    drivers : the p features' driver families.
    k : reasons per row.
    groups : column groups of one measure over several windows (:func:`window_groups`);
        only each group's strongest feature can be a reason.

    Returns
    -------
    Column indices (n, k), −1 where a row has fewer reasons, and their scores (NaN there).
    """
    n, p = scores.shape
    k = min(k, p)
    if n == 0 or k == 0:
        return np.full((n, k), -1, dtype=np.int64), np.full((n, k), np.nan)
    raw = np.where(usable, scores, 0.0)
    raw[np.isnan(raw)] = 0.0
    candidate = raw > 0

    families, family_of = np.unique(np.asarray(drivers, dtype=object), return_inverse=True)
    onehot = np.eye(len(families))[family_of]  # p × F
    actionable = np.isin(families, list(ACTIONABLE_DRIVERS))
    total = raw @ onehot  # each family's summed contribution
    eligible = ((np.maximum(raw, 0.0) @ onehot) > 0) & actionable
    lead_family = np.where(eligible, total, -np.inf).argmax(axis=1)
    lead = np.where(candidate & (family_of[None, :] == lead_family[:, None]), raw, -np.inf).argmax(axis=1)
    has_lead = eligible.any(axis=1)

    # one sortable key: the lead first, then actionable, then context, each by size
    step = float(raw.max()) + 1.0
    key = raw + step * actionable[family_of].astype(float)
    key[~candidate] = -np.inf
    key[np.flatnonzero(has_lead), lead[has_lead]] += step

    # Take enough of the best to keep k after dropping a measure's weaker windows: they share
    # the family (so the tier) of the strongest, which therefore comes first.
    gid = np.arange(p)
    for g, cols in enumerate(groups or []):
        gid[cols] = p + g
    width = max([1, *(len(c) for c in groups or [])])
    m = min(p, k * width)
    idx = np.argpartition(-key, m - 1, axis=1)[:, :m] if p > m else np.tile(np.arange(p), (n, 1))
    idx = np.take_along_axis(idx, np.argsort(-np.take_along_axis(key, idx, axis=1), axis=1, kind="stable"), axis=1)
    found = np.isfinite(np.take_along_axis(key, idx, axis=1))
    if width > 1:
        g = gid[idx]
        for j in range(1, m):
            found[:, j] &= ~(g[:, :j] == g[:, j : j + 1]).any(axis=1)
        keep = np.argsort(~found, axis=1, kind="stable")[:, :k]
        idx, found = np.take_along_axis(idx, keep, axis=1), np.take_along_axis(found, keep, axis=1)
    idx, found = idx[:, :k], found[:, :k]
    return np.where(found, idx, -1), np.where(found, np.take_along_axis(raw, idx, axis=1), np.nan)


# --------------------------------------------------------------------------- sentences


def _share(share: float) -> str:
    return "under 1%" if 0 < share < 0.005 else f"{share:.0%}"


def yardstick(info: Feature, value: object, reference: dict[str, object] | None) -> str:
    """What is typical for this feature, as the end of a reason ("; typical: 3 min").

    Numbers: the training median, in the feature's unit. Yes/no features and categories:
    the share of training rows with the same value ("; true of 6% of accounts"). Empty
    without a reference (a model trained before references were stored)."""
    if not reference:
        return ""
    if "shares" in reference:
        shares: dict[str, float] = reference["shares"]  # type: ignore[assignment]
        return f"; true of {_share(shares.get(str(value), 0.0))} of accounts"
    if not float(reference.get("known", 1.0)):  # type: ignore[arg-type]
        return ""
    if info.unit.kind == "flag":  # the mean is over accounts with a value: a share of all accounts
        known, yes = float(reference.get("known", 1.0)), float(reference["mean"])  # type: ignore[arg-type]
        return f"; true of {_share(known * (yes if value else 1.0 - yes))} of accounts"
    return f"; typical: {info.unit.typical(float(reference['median']))}"  # type: ignore[arg-type]


def sentence(info: Feature, value: object, reference: dict[str, object] | None) -> str:
    """One reason: the feature's sentence for the value, then the yardstick."""
    return info.explain(value) + yardstick(info, value, reference)


def _digits(v: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        digits = np.where(np.abs(v) >= 10, 0, 1 - np.floor(np.log10(np.abs(v))))
    return np.nan_to_num(digits, nan=0, posinf=0, neginf=0).astype(int)


def _round_vec(v: np.ndarray, digits: np.ndarray) -> np.ndarray:
    scale = 10.0 ** digits
    return np.round(v * scale) / scale


def reason_texts(x: pd.DataFrame, column_idx: np.ndarray, infos: list[Feature], reference: dict[str, dict[str, object]]) -> np.ndarray:
    """Sentence per row for the chosen feature column ("" where none), one format call per
    distinct (feature, displayed value) — never one per row."""
    out = np.full(len(column_idx), "", dtype=object)
    for j in np.unique(column_idx[column_idx >= 0]):
        rows = np.flatnonzero(column_idx == j)
        column = x.iloc[:, j]  # the column, then its rows: a 2-D lookup checks both keys first
        values = column if len(rows) == len(column) else column.iloc[rows]
        if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(values.dtype):
            shown = values.astype("str").to_numpy()
        else:
            shown = _round_vec(values.to_numpy(dtype=float), _digits(values.to_numpy(dtype=float)))
        uniques, inverse = np.unique(shown, return_inverse=True)
        ref = reference.get(infos[j].name)
        sentences = np.array([sentence(infos[j], u, ref) for u in uniques], dtype=object)
        out[rows] = sentences[inverse]
    return out


def split_reasons(features: str | None, drivers: str | None, contributions: str | None) -> dict[str, list]:
    """One account's joined reason columns (as in the risk list) back as lists, for the API."""

    def items(text: str | None) -> list[str]:
        return [v for v in (text or "").split(",") if v]

    return {"reason_features": items(features), "reason_drivers": items(drivers), "reason_contributions": [float(v) for v in items(contributions)]}


def _join(columns: np.ndarray) -> list[str]:
    """Row-wise comma join of an (n, k) text array, empty entries dropped (one Arrow kernel:
    cheap for one account and for a million)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if columns.shape[1] == 0:
        return [""] * len(columns)
    # Empty entries are joined and then squeezed out: pyarrow 25's null_handling="skip" drops
    # rows whose entries are all null instead of returning "" for them.
    parts = [pa.array(columns[:, i], type=pa.string()) for i in range(columns.shape[1])]
    joined = pc.binary_join_element_wise(*parts, ",")
    return pc.utf8_trim(pc.replace_substring_regex(joined, ",+", ","), ",").to_pylist()


# --------------------------------------------------------------------------- per account


@dataclass
class Reasons:
    """Up to k reasons per row, in reading order."""

    texts: np.ndarray  # rows × k sentences ("" where fewer reasons)
    features: list[str]  # per row, comma-separated feature names
    contributions: list[str]  # per row, comma-separated contributions (log-odds or deviation score)
    drivers: list[str]  # per row, comma-separated driver families
    lead_driver: np.ndarray  # per row, the lead reason's family ("" without reasons)
    method: np.ndarray  # per row: tree_shap | deviation | none


def explain(model: ChurnModel, features: pd.DataFrame, exact_rows: np.ndarray, config: ScoreConfig = ScoreConfig()) -> Reasons:
    """Reasons for every row of ``features``: exact for ``exact_rows``, cheap for the others."""
    x = model.prepare(features)
    infos = model.feature_infos()
    drivers = [i.driver for i in infos]
    groups = model.derived("window_groups", lambda: window_groups(model.feature_names))
    n, k = len(x), config.top_reasons
    top_idx = np.full((n, k), -1, dtype=np.int64)
    top_val = np.full((n, k), np.nan)
    method = np.full(n, DEVIATION, dtype=object)
    usable = x.notna().to_numpy()  # a reason must describe a value the account really has
    weight = model.derived("gain_shares", lambda: gain_shares(model))
    exact = np.flatnonzero(exact_rows)
    rest = np.flatnonzero(~np.asarray(exact_rows, dtype=bool))
    for kind, todo in ((EXACT, exact), (DEVIATION, rest)):
        for start in range(0, len(todo), config.reason_chunk_rows):
            rows = todo[start : start + config.reason_chunk_rows]
            chunk = x if len(rows) == n else x.iloc[rows]  # all rows (sorted, distinct): no copy, a fixed cost for a request
            if kind == EXACT:
                scores = exact_contributions(model, model.matrix(chunk), config.reason_chunk_rows)
            else:
                scores = deviation_scores(model, chunk, infos, weight)
            idx, val = order_reasons(scores, usable[rows], drivers, k, groups)
            top_idx[rows, : idx.shape[1]], top_val[rows, : idx.shape[1]] = idx, val
    method[exact] = EXACT
    method[(top_idx < 0).all(axis=1)] = NONE

    texts = np.full((n, k), "", dtype=object)
    for pos in range(top_idx.shape[1]):
        texts[:, pos] = reason_texts(x, top_idx[:, pos], infos, model.reference)
    names = np.array([i.name for i in infos] + [""], dtype=object)  # index −1 → ""
    families = np.array(drivers + [""], dtype=object)
    values = np.where(top_idx >= 0, np.char.mod("%.4g", np.nan_to_num(top_val)), "")
    return Reasons(
        texts=texts,
        features=_join(names[top_idx]),
        contributions=_join(values.astype(object)),
        drivers=_join(families[top_idx]),
        lead_driver=families[top_idx[:, 0]] if k else np.full(n, "", dtype=object),
        method=method,
    )


# --------------------------------------------------------------------------- accuracy


def reason_accuracy(risk: pd.DataFrame, causes: pd.DataFrame) -> pd.DataFrame:
    """Lead reasons of the flagged accounts against the planted causes of a generated business.

    ``risk`` is a risk list (:func:`churn.outreach.score.build_risk_list`) scored at a month start T;
    ``causes`` is :attr:`churn.data.synthetic.GeneratedData.causes`. One row per flagged account
    (outreach or control) with its planted ``dominant_cause``, ``dominant_family`` and
    ``actionable`` for the month starting at T, the ``lead_driver`` its reasons name, and
    ``match`` (lead driver = dominant family). The figure of merit is
    ``match[actionable].mean()``: of the flagged accounts whose main planted cause a team can
    act on, the share whose lead reason names that cause's family."""
    flagged = risk.loc[risk["outreach"] | risk["control"], ["account_id", "as_of", "rank", "reason_drivers", "reason_method"]]
    as_of = flagged["as_of"].iloc[0] if len(flagged) else None
    truth = causes.loc[causes["month_start"] == as_of, ["account_id", "dominant_cause", "dominant_family", "actionable"]]
    out = flagged.merge(truth.astype({"account_id": "str"}), on="account_id", how="left")
    out["lead_driver"] = out["reason_drivers"].str.split(",").str[0].fillna("")
    out["actionable"] = out["actionable"].astype("boolean").fillna(False).astype(bool)
    out["match"] = (out["lead_driver"] == out["dominant_family"].astype("str")).to_numpy(dtype=bool)
    return out.drop(columns=["reason_drivers"]).reset_index(drop=True)


def accuracy_summary(matches: pd.DataFrame) -> dict[str, object]:
    """The headline of :func:`reason_accuracy`: accuracy over flagged accounts with an
    actionable dominant cause, how many there were, and the accuracy per cause."""
    acted = matches[matches["actionable"]]
    by_cause = acted.groupby(acted["dominant_cause"].astype("str"))["match"].agg(["mean", "size"])
    return {
        "accuracy": float(acted["match"].mean()) if len(acted) else float("nan"),
        "accounts": int(len(acted)),
        "flagged": int(len(matches)),
        "by_cause": {c: (float(r["mean"]), int(r["size"])) for c, r in by_cause.iterrows()},
    }
